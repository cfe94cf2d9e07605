// pricewatcher (igor's agents/pricewatcher, in AssemblyScript): reads BTC and ETH prices over HTTP on
// tick 1 and every 10th tick, keeps latest/high/low in its checkpoint, logs a heartbeat every 5 ticks.
// Capabilities: clock, log, http (api.coingecko.com and localhost, 10 s, 4 KiB).
//
// It reads CoinGecko's simple/price as igor's does; build with `--use IGOR_PRICEFEED_PORT=N` to read
// the same format from http://localhost:N instead (scripts/mock/pricefeed.mjs).
import { Agent, Encoder, Decoder, register, clockNow, log, httpGet, httpErrorName } from "../../agents/sdk";
import { dollars } from "../lib/text";
export * from "../../agents/sdk/exports";

const PRICE_PATH = "/api/v3/simple/price?ids=bitcoin,ethereum&vs_currencies=usd";
// @ts-ignore: compile-time constant, defined only by `--use IGOR_PRICEFEED_PORT=N`
const API_URL = isDefined(IGOR_PRICEFEED_PORT)
  // @ts-ignore: as above
  ? "http://localhost:" + (<i32>IGOR_PRICEFEED_PORT).toString() + PRICE_PATH
  : "https://api.coingecko.com" + PRICE_PATH;
/** Ticks between fetches (CoinGecko's free tier allows ~30 requests a minute). */
const FETCH_EVERY: u64 = 10;
const HEARTBEAT_EVERY: u64 = 5;
const MILESTONE_EVERY: u64 = 10;

/**
 * The USD price of `coin` in cents from `{"bitcoin":{"usd":83456.78},…}`, 0 if absent (igor's
 * extractPrice: integer part and two decimals, further digits dropped).
 */
function extractPrice(body: string, coin: string): u64 {
  const key = '"' + coin + '":{"usd":';
  const at = body.indexOf(key);
  if (at < 0) return 0;
  let i = at + key.length;
  while (i < body.length && body.charCodeAt(i) == 0x20) i++;
  let whole: u64 = 0;
  let frac: u64 = 0;
  let fracDigits = 0;
  let inFrac = false;
  for (; i < body.length; i++) {
    const c = body.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) {
      if (!inFrac) whole = whole * 10 + <u64>(c - 0x30);
      else if (fracDigits < 2) {
        frac = frac * 10 + <u64>(c - 0x30);
        fracDigits++;
      }
    } else if (c == 0x2e && !inFrac) inFrac = true;
    else break;
  }
  for (; fracDigits < 2; fracDigits++) frac *= 10;
  return whole * 100 + frac;
}

class PriceWatcher extends Agent {
  tickCount: u64 = 0;
  birthNs: i64 = 0;
  lastNs: i64 = 0;
  btcLatest: u64 = 0;
  btcHigh: u64 = 0;
  btcLow: u64 = 0;
  ethLatest: u64 = 0;
  ethHigh: u64 = 0;
  ethLow: u64 = 0;
  observations: u32 = 0;
  errors: u32 = 0;

  init(): void {}

  tick(): bool {
    this.tickCount++;
    const now = clockNow();
    if (this.birthNs == 0) this.birthNs = now;
    this.lastNs = now;
    const ageS = (this.lastNs - this.birthNs) / 1_000_000_000;
    const t = this.tickCount.toString();

    if (this.tickCount == 1 || this.tickCount % FETCH_EVERY == 0) {
      const res = httpGet(API_URL);
      if (!res.ok) return this.fail(t, "http failed: " + httpErrorName(res.error));
      if (res.status < 200 || res.status >= 300) return this.fail(t, "http status " + res.status.toString());
      const body = res.text();
      const btc = extractPrice(body, "bitcoin");
      const eth = extractPrice(body, "ethereum");
      if (btc == 0 && eth == 0) return this.fail(t, "could not parse prices");
      this.observations++;
      if (btc > 0) {
        this.btcLatest = btc;
        if (this.btcHigh == 0 || btc > this.btcHigh) this.btcHigh = btc;
        if (this.btcLow == 0 || btc < this.btcLow) this.btcLow = btc;
      }
      if (eth > 0) {
        this.ethLatest = eth;
        if (this.ethHigh == 0 || eth > this.ethHigh) this.ethHigh = eth;
        if (this.ethLow == 0 || eth < this.ethLow) this.ethLow = eth;
      }
      log("[pricewatcher] tick=" + t + " age=" + ageS.toString() + "s obs=" + this.observations.toString() +
        " FETCH | BTC=$" + dollars(this.btcLatest) + " (high=$" + dollars(this.btcHigh) + " low=$" + dollars(this.btcLow) +
        ") | ETH=$" + dollars(this.ethLatest) + " (high=$" + dollars(this.ethHigh) + " low=$" + dollars(this.ethLow) + ")");
    } else if (this.tickCount % HEARTBEAT_EVERY == 0) {
      log("[pricewatcher] tick=" + t + " age=" + ageS.toString() + "s obs=" + this.observations.toString() +
        " | BTC=$" + dollars(this.btcLatest) + " | ETH=$" + dollars(this.ethLatest));
    }
    if (this.tickCount % MILESTONE_EVERY == 0) {
      log("[pricewatcher] MILESTONE: " + this.observations.toString() + " observations across " + ageS.toString() +
        "s — this agent remembers everything");
    }
    return false;
  }

  fail(t: string, why: string): bool {
    this.errors++;
    log("[pricewatcher] tick=" + t + " ERROR: " + why + " (errors=" + this.errors.toString() + ")");
    return false;
  }

  marshal(enc: Encoder): void {
    enc.u64(this.tickCount).i64(this.birthNs).i64(this.lastNs)
      .u64(this.btcLatest).u64(this.btcHigh).u64(this.btcLow)
      .u64(this.ethLatest).u64(this.ethHigh).u64(this.ethLow)
      .u32(this.observations).u32(this.errors);
  }

  unmarshal(dec: Decoder): void {
    this.tickCount = dec.u64();
    this.birthNs = dec.i64();
    this.lastNs = dec.i64();
    this.btcLatest = dec.u64();
    this.btcHigh = dec.u64();
    this.btcLow = dec.u64();
    this.ethLatest = dec.u64();
    this.ethHigh = dec.u64();
    this.ethLow = dec.u64();
    this.observations = dec.u32();
    this.errors = dec.u32();
  }
}

register(new PriceWatcher());
