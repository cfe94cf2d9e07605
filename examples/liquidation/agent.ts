// liquidation (igor's agents/liquidation, its canonical demo, in AssemblyScript): watches a simulated
// ETH position (10 ETH collateral, 15,000 USDC debt; liquidation below $1,550) against a price that is
// a pure function of time: one slot per second since birth, on an authored curve. After downtime it
// detects the gap, replays the missed slots and reports breaches that happened while it was dead.
// Capabilities: clock, log.
import { Encoder, Decoder, register, log } from "igord/sdk";
import { DemoAgent, Range } from "../lib/demo";
import { dollars } from "../lib/text";
export * from "igord/sdk/exports";

const THRESHOLD_CENTS: u64 = 155000;
const RULE = "────────────────────────────────────────────────────";

// The curve: slot → price in cents, linear between points, the last held beyond.
//  0–15 calm; 16–30 pressure (the agent dies around 15); 31–45 sharp drop, breach at 38, partial
//  recovery (the agent is dead); 46–60 recovery (the agent resumes).
const CURVE_SLOTS: u64[] = [0, 5, 10, 15, 20, 25, 30, 35, 38, 40, 45, 50, 55];
const CURVE_PRICES: u64[] = [200000, 205000, 192000, 198000, 185000, 178000, 182000, 165000, 154000, 158000, 162000, 170000, 175000];

function priceAtSlot(slot: u64): u64 {
  if (slot <= CURVE_SLOTS[0]) return CURVE_PRICES[0];
  for (let i = 1; i < CURVE_SLOTS.length; i++) {
    if (slot <= CURVE_SLOTS[i]) {
      const span = CURVE_SLOTS[i] - CURVE_SLOTS[i - 1];
      const offset = slot - CURVE_SLOTS[i - 1];
      const prev = CURVE_PRICES[i - 1];
      const next = CURVE_PRICES[i];
      return next >= prev ? prev + ((next - prev) * offset) / span : prev - ((prev - next) * offset) / span;
    }
  }
  return CURVE_PRICES[CURVE_PRICES.length - 1];
}

class LiquidationWatcher extends DemoAgent {
  lastProcessedSlot: u64 = 0;
  price: Range = new Range();
  firstWarningSlot: u64 = 0;
  warningActive: u32 = 0;
  slotsProcessed: u32 = 0;

  tick(): bool {
    this.advance();
    const currentSlot = <u64>this.ageS;

    if (this.tickCount == 1) {
      this.processSlot(0, "live");
      this.lastProcessedSlot = 0;
      return false;
    }

    if (currentSlot > this.lastProcessedSlot + 1) {
      const gap = currentSlot - this.lastProcessedSlot - 1;
      log("");
      log(RULE);
      log("  GAP DETECTED");
      log("  Last processed:  slot " + this.lastProcessedSlot.toString());
      log("  Current time:    slot " + currentSlot.toString());
      log("  Missed:          " + gap.toString() + " slots (" + (this.lastProcessedSlot + 1).toString() + ".." + (currentSlot - 1).toString() + ")");
      log("  Replaying missed history...");
      log(RULE);
      const warningBefore = this.firstWarningSlot;
      for (let slot = this.lastProcessedSlot + 1; slot < currentSlot; slot++) this.processSlot(slot, "catch-up");
      log(RULE);
      if (this.firstWarningSlot != 0 && warningBefore == 0) {
        log("  ⚠ THRESHOLD BREACHED AT SLOT " + this.firstWarningSlot.toString() + " (DURING DOWNTIME)");
        log("  The agent was dead. The world kept moving.");
        log("  Catch-up reconstructed " + gap.toString() + " missed slots.");
      } else {
        log("  Catch-up complete: " + gap.toString() + " missed slots replayed.");
      }
      log(RULE);
      log("");
    }

    this.processSlot(currentSlot, "live");
    this.lastProcessedSlot = currentSlot;
    return false;
  }

  processSlot(slot: u64, mode: string): void {
    const price = priceAtSlot(slot);
    this.price.observe(price);
    this.slotsProcessed++;
    const below = price < THRESHOLD_CENTS;
    if (below && this.firstWarningSlot == 0) this.firstWarningSlot = slot;
    this.warningActive = below ? 1 : 0;
    const distance = below ? "-$" + dollars(THRESHOLD_CENTS - price) : "+$" + dollars(price - THRESHOLD_CENTS);
    let line = "[" + mode + "] slot " + slot.toString() + ": ETH $" + dollars(price) + "  threshold $" + dollars(THRESHOLD_CENTS) + "  distance " + distance;
    if (below) line += slot == this.firstWarningSlot ? "  ⚠ LIQUIDATION WARNING (threshold breached)" : "  ⚠ WARNING";
    log(line);
  }

  marshal(enc: Encoder): void {
    this.marshalLife(enc);
    enc.u64(this.lastProcessedSlot);
    this.price.marshal(enc);
    enc.u64(this.firstWarningSlot).u32(this.warningActive).u32(this.slotsProcessed);
  }

  unmarshal(dec: Decoder): void {
    this.unmarshalLife(dec);
    this.lastProcessedSlot = dec.u64();
    this.price.unmarshal(dec);
    this.firstWarningSlot = dec.u64();
    this.warningActive = dec.u32();
    this.slotsProcessed = dec.u32();
  }
}

register(new LiquidationWatcher());
