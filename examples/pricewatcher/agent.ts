// pricewatcher (igor's agents/pricewatcher, in AssemblyScript): reads BTC and ETH prices over HTTP on
// tick 1 and every 10th tick, keeps latest/high/low in its checkpoint, logs a heartbeat every 5 ticks.
// Capabilities: clock, log, http (api.coingecko.com and localhost, 10 s, 4 KiB).
//
// It reads CoinGecko's simple/price as igor's does; build with `--use IGOR_PRICEFEED_PORT=N` to read
// the same format from http://localhost:N instead (scripts/mock/pricefeed.mjs).
import { Encoder, Decoder, register, log, httpGet, httpErrorName } from "igord/sdk";
import { DemoAgent, Range } from "../lib/demo";
import { dollars } from "../lib/text";
export * from "igord/sdk/exports";

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

class PriceWatcher extends DemoAgent {
  btc: Range = new Range();
  eth: Range = new Range();
  observations: u32 = 0;
  errors: u32 = 0;

  tick(): bool {
    this.advance();
    const ageS = this.ageS;
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
      if (btc > 0) this.btc.observe(btc);
      if (eth > 0) this.eth.observe(eth);
      log("[pricewatcher] tick=" + t + " age=" + ageS.toString() + "s obs=" + this.observations.toString() +
        " FETCH | BTC=$" + dollars(this.btc.latest) + " (high=$" + dollars(this.btc.high) + " low=$" + dollars(this.btc.low) +
        ") | ETH=$" + dollars(this.eth.latest) + " (high=$" + dollars(this.eth.high) + " low=$" + dollars(this.eth.low) + ")");
    } else if (this.tickCount % HEARTBEAT_EVERY == 0) {
      log("[pricewatcher] tick=" + t + " age=" + ageS.toString() + "s obs=" + this.observations.toString() +
        " | BTC=$" + dollars(this.btc.latest) + " | ETH=$" + dollars(this.eth.latest));
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
    this.marshalLife(enc);
    this.btc.marshal(enc);
    this.eth.marshal(enc);
    enc.u32(this.observations).u32(this.errors);
  }

  unmarshal(dec: Decoder): void {
    this.unmarshalLife(dec);
    this.btc.unmarshal(dec);
    this.eth.unmarshal(dec);
    this.observations = dec.u32();
    this.errors = dec.u32();
  }
}

register(new PriceWatcher());
