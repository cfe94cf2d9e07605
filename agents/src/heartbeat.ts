// heartbeat: counts ticks, reports its age, and logs a milestone every 10 ticks.
// Capabilities: clock, log.
import { Agent, Encoder, Decoder, register, clockNow, log } from "igord/sdk";
export * from "igord/sdk/exports";

class Heartbeat extends Agent {
  ticks: u64 = 0;
  bornNs: i64 = 0;

  init(): void {
    this.bornNs = clockNow();
    log("heartbeat: alive");
  }

  tick(): bool {
    this.ticks++;
    const ageMs = (clockNow() - this.bornNs) / 1_000_000;
    log("heartbeat: tick " + this.ticks.toString() + " age " + ageMs.toString() + "ms");
    if (this.ticks % 10 == 0) log("heartbeat: milestone " + this.ticks.toString());
    return false;
  }

  marshal(enc: Encoder): void {
    enc.u64(this.ticks).i64(this.bornNs);
  }

  unmarshal(dec: Decoder): void {
    this.ticks = dec.u64();
    this.bornNs = dec.i64();
  }
}

register(new Heartbeat());
