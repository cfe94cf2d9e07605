// fastpath: works in bursts. Each burst is BURST ticks that return "more work" (the host ticks it
// again at the fast interval), then one resting tick at the normal interval. Capabilities: clock, log.
import { Agent, Encoder, Decoder, register, clockNow, log } from "igord/sdk";
export * from "igord/sdk/exports";

const BURST: u32 = 50;

class FastPath extends Agent {
  ticks: u64 = 0;
  inBurst: u32 = 0;
  bursts: u32 = 0;
  burstStartNs: i64 = 0;

  init(): void {
    log("fastpath: bursts of " + BURST.toString() + " ticks");
  }

  tick(): bool {
    this.ticks++;
    if (this.inBurst == 0) this.burstStartNs = clockNow();
    this.inBurst++;
    if (this.inBurst < BURST) return true;
    this.bursts++;
    const tookMs = (clockNow() - this.burstStartNs) / 1_000_000;
    log("fastpath: burst " + this.bursts.toString() + " of " + BURST.toString() + " ticks took " + tookMs.toString() + "ms");
    this.inBurst = 0;
    return false;
  }

  marshal(enc: Encoder): void {
    enc.u64(this.ticks).u32(this.inBurst).u32(this.bursts).i64(this.burstStartNs);
  }

  unmarshal(dec: Decoder): void {
    this.ticks = dec.u64();
    this.inBurst = dec.u32();
    this.bursts = dec.u32();
    this.burstStartNs = dec.i64();
  }
}

register(new FastPath());
