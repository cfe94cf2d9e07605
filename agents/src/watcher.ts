// watcher: a gap-aware observer. Time is cut into 1-second slots counted from its birth; each tick
// it handles the current slot, and when it finds slots it never saw (it was stopped, suspended or
// migrating) it reports the gap and accounts for every missed slot. Capabilities: clock, log.
import { Agent, Encoder, Decoder, register, clockNow, log } from "igord/sdk";
export * from "igord/sdk/exports";

const SLOT_NS: i64 = 1_000_000_000;
// Ticks arrive about one slot apart, so timer jitter alone can skip a single slot boundary; only a
// run of more than JITTER_SLOTS unseen slots is a gap (the agent was not running).
const JITTER_SLOTS: i64 = 1;

class Watcher extends Agent {
  bornNs: i64 = 0;
  lastSlot: i64 = -1;
  seenSlots: u64 = 0;
  missedSlots: u64 = 0;
  gaps: u32 = 0;

  init(): void {
    this.bornNs = clockNow();
    log("watcher: watching from slot 0");
  }

  tick(): bool {
    const slot = (clockNow() - this.bornNs) / SLOT_NS;
    if (slot <= this.lastSlot) return false; // same slot again: nothing new to observe
    const missed = this.lastSlot < 0 ? 0 : slot - this.lastSlot - 1;
    if (missed > JITTER_SLOTS) {
      this.gaps++;
      this.missedSlots += <u64>missed;
      log("watcher: gap of " + missed.toString() + " slot(s) before slot " + slot.toString() +
        " (" + this.missedSlots.toString() + " missed in " + this.gaps.toString() + " gap(s))");
    }
    this.seenSlots++;
    this.lastSlot = slot;
    return false;
  }

  marshal(enc: Encoder): void {
    enc.i64(this.bornNs).i64(this.lastSlot).u64(this.seenSlots).u64(this.missedSlots).u32(this.gaps);
  }

  unmarshal(dec: Decoder): void {
    this.bornNs = dec.i64();
    this.lastSlot = dec.i64();
    this.seenSlots = dec.u64();
    this.missedSlots = dec.u64();
    this.gaps = dec.u32();
  }
}

register(new Watcher());
