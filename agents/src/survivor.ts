// survivor: remembers its tick count, its birth time and a luck value drawn from random bytes at
// birth; every tick it rolls a die from its own checkpointed PRNG. Capabilities: clock, rand, log.
import { Agent, Encoder, Decoder, register, clockNow, randU64, log } from "igord/sdk";
export * from "igord/sdk/exports";

class Survivor extends Agent {
  ticks: u64 = 0;
  bornNs: i64 = 0;
  luck: u32 = 0;
  rng: u64 = 0;

  init(): void {
    this.bornNs = clockNow();
    this.rng = randU64() | 1;
    this.luck = <u32>(this.rng % 100);
    log("survivor: born with luck " + this.luck.toString());
  }

  // xorshift64*: deterministic, and its state is part of the checkpoint (unlike Math.random).
  nextRoll(): u32 {
    let x = this.rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    this.rng = x;
    return <u32>(((x * 0x2545f4914f6cdd1d) >> 33) % 6) + 1;
  }

  tick(): bool {
    this.ticks++;
    const aliveS = (clockNow() - this.bornNs) / 1_000_000_000;
    const roll = this.nextRoll();
    log("survivor: tick " + this.ticks.toString() + " alive " + aliveS.toString() + "s roll " + roll.toString());
    return false;
  }

  marshal(enc: Encoder): void {
    enc.u64(this.ticks).i64(this.bornNs).u32(this.luck).u64(this.rng);
  }

  unmarshal(dec: Decoder): void {
    this.ticks = dec.u64();
    this.bornNs = dec.i64();
    this.luck = dec.u32();
    this.rng = dec.u64();
  }
}

register(new Survivor());
