// The demo servers (scripts/mock): igor's endpoints and wire formats, and the receipt checks igor's
// paywall leaves out (signature against the key inside the receipt, terms, single use), with receipts
// signed here by node:crypto Ed25519 in igor's payment receipt layout.
import { generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { parseAddr, parseReceipt, weakPublicKey, type Started } from "../../scripts/mock/common.mjs";
import { MOCKCLOUD_TERMS, startMockcloud } from "../../scripts/mock/mockcloud.mjs";
import { PAYWALL_TERMS, startPaywall } from "../../scripts/mock/paywall.mjs";
import { startPricefeed } from "../../scripts/mock/pricefeed.mjs";

interface Key { privateKey: KeyObject; publicRaw: Buffer }

function newKey(): Key {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const jwk = publicKey.export({ format: "jwk" });
  return { privateKey, publicRaw: Buffer.from(jwk.x ?? "", "base64url") };
}

/** igor's receipt: [i64 amount][i64 ts ns][u32][recipient][u32][memo][32 B key] + 64 B signature. */
function receipt(key: Key, amount: bigint, recipient: string, memo: string, tsNs = BigInt(Date.now()) * 1_000_000n): Buffer {
  const r = Buffer.from(recipient);
  const m = Buffer.from(memo);
  const head = Buffer.alloc(8 + 8 + 4);
  head.writeBigInt64LE(amount, 0);
  head.writeBigInt64LE(tsNs, 8);
  head.writeUInt32LE(r.length, 16);
  const mlen = Buffer.alloc(4);
  mlen.writeUInt32LE(m.length);
  const signed = Buffer.concat([head, r, mlen, m, key.publicRaw]);
  return Buffer.concat([signed, sign(null, signed, key.privateKey)]);
}

function terms(body: Buffer): { amount: bigint; recipient: string; memo: string } {
  const rlen = body.readUInt32LE(8);
  const mlen = body.readUInt32LE(12 + rlen);
  expect(body.length).toBe(16 + rlen + mlen);
  return {
    amount: body.readBigInt64LE(0),
    recipient: body.subarray(12, 12 + rlen).toString(),
    memo: body.subarray(16 + rlen, 16 + rlen + mlen).toString(),
  };
}

const started: Started[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.close()));
});

async function paywall() {
  const s = await startPaywall({ host: "127.0.0.1", port: 0 });
  started.push(s);
  return { ...s, url: `http://127.0.0.1:${s.port}/api/premium-data` };
}

function pay(url: string, r: Buffer | string, init: RequestInit = {}) {
  const hex = typeof r === "string" ? r : r.toString("hex");
  return fetch(url, { ...init, headers: { ...(init.headers as Record<string, string>), "X-Payment": hex } });
}

describe("paywall (igor's cmd/paywall, plus receipt checks)", () => {
  it("answers a request without payment with 402 and igor's binary terms", async () => {
    const p = await paywall();
    const res = await fetch(p.url);
    expect(res.status).toBe(402);
    expect(res.headers.get("content-type")).toBe("application/octet-stream");
    expect(terms(Buffer.from(await res.arrayBuffer()))).toEqual({
      amount: 100_000n,
      recipient: "paywall-provider",
      memo: "premium-data-access",
    });
    expect((await fetch(`http://127.0.0.1:${p.port}/health`)).status).toBe(200);
  });

  it("delivers premium data for a receipt signed by the key inside it that pays exactly the terms", async () => {
    const p = await paywall();
    const res = await pay(p.url, receipt(newKey(), PAYWALL_TERMS.amount, PAYWALL_TERMS.recipient, PAYWALL_TERMS.memo));
    expect(res.status).toBe(200);
    const body = JSON.parse(await res.text()) as { insight: string; timestamp: number; tier: string };
    expect(body.tier).toBe("premium");
    expect(body.insight.length).toBeGreaterThan(0);
    expect(p.stats.delivered).toBe(1);
  });

  it("refuses a receipt whose signature does not verify (403 bad_signature)", async () => {
    const p = await paywall();
    const good = receipt(newKey(), PAYWALL_TERMS.amount, PAYWALL_TERMS.recipient, PAYWALL_TERMS.memo);
    const forged = Buffer.from(good);
    forged[forged.length - 1]! ^= 0x01; // flip a signature bit
    const res = await pay(p.url, forged);
    expect(res.status).toBe(403);
    expect(res.headers.get("x-payment-error")).toBe("bad_signature");
    // A receipt signed by one key but naming another key in it is a forgery too.
    const other = newKey();
    const swapped = Buffer.from(good);
    other.publicRaw.copy(swapped, swapped.length - 64 - 32);
    expect((await pay(p.url, swapped)).status).toBe(403);
    expect(p.stats.delivered).toBe(0);
    expect(p.stats.refused).toEqual({ bad_signature: 2 });
  });

  it("refuses every receipt under a small-order key such as igor's all-zero one, whose signatures verify by chance", async () => {
    const p = await paywall();
    // With the zero key and a zero signature, plain Ed25519 verification passes for about one
    // timestamp in four; none of sixteen may pass.
    const statuses: number[] = [];
    for (let ts = 1n; ts <= 16n; ts++) {
      const r = receipt(newKey(), PAYWALL_TERMS.amount, PAYWALL_TERMS.recipient, PAYWALL_TERMS.memo, ts);
      r.fill(0, r.length - 96);
      statuses.push((await pay(p.url, r)).status);
    }
    expect(statuses).toEqual(Array(16).fill(403));
    expect(weakPublicKey(Buffer.alloc(32))).toBe(true);
    expect(weakPublicKey(Buffer.from("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05", "hex"))).toBe(true);
    expect(weakPublicKey(newKey().publicRaw)).toBe(false);
  });

  it("refuses a validly signed receipt for other terms (403 wrong_terms)", async () => {
    const p = await paywall();
    const key = newKey();
    for (const r of [
      receipt(key, PAYWALL_TERMS.amount - 1n, PAYWALL_TERMS.recipient, PAYWALL_TERMS.memo),
      receipt(key, PAYWALL_TERMS.amount, "someone-else", PAYWALL_TERMS.memo),
      receipt(key, PAYWALL_TERMS.amount, PAYWALL_TERMS.recipient, "compute-deployment"),
    ]) {
      const res = await pay(p.url, r);
      expect(res.status).toBe(403);
      expect(((await res.json()) as { error: string }).error).toBe("wrong_terms");
    }
    expect(p.stats.delivered).toBe(0);
  });

  it("refuses a receipt used before (409 replayed), while a new receipt from the same key is served", async () => {
    const p = await paywall();
    const key = newKey();
    const r = receipt(key, PAYWALL_TERMS.amount, PAYWALL_TERMS.recipient, PAYWALL_TERMS.memo, 1_000n);
    expect((await pay(p.url, r)).status).toBe(200);
    const again = await pay(p.url, r);
    expect(again.status).toBe(409);
    expect(again.headers.get("x-payment-error")).toBe("replayed");
    // Upper-case hex is the same receipt.
    expect((await pay(p.url, r.toString("hex").toUpperCase())).status).toBe(409);
    expect((await pay(p.url, receipt(key, PAYWALL_TERMS.amount, PAYWALL_TERMS.recipient, PAYWALL_TERMS.memo, 2_000n))).status).toBe(200);
    expect(p.stats.delivered).toBe(2);
  });

  it("refuses what is not a receipt (400 malformed)", async () => {
    const p = await paywall();
    const good = receipt(newKey(), PAYWALL_TERMS.amount, PAYWALL_TERMS.recipient, PAYWALL_TERMS.memo);
    for (const bad of ["zz", "abc", good.subarray(0, good.length - 1).toString("hex"), Buffer.concat([good, Buffer.from([0])]).toString("hex")]) {
      expect((await pay(p.url, bad)).status).toBe(400);
    }
  });
});

describe("mockcloud (igor's cmd/mockcloud, plus receipt checks)", () => {
  async function cloud() {
    const s = await startMockcloud({ host: "127.0.0.1", port: 0 });
    started.push(s);
    return { ...s, base: `http://127.0.0.1:${s.port}/v1/deploy` };
  }
  const deployBody = JSON.stringify({ wasm_hash: "ab".repeat(32), budget_offer: 500000 });

  it("asks for payment, deploys for a valid receipt, advances status per query and terminates", async () => {
    const c = await cloud();
    const probe = await fetch(c.base, { method: "POST" });
    expect(probe.status).toBe(402);
    expect(terms(Buffer.from(await probe.arrayBuffer()))).toEqual({ amount: 500_000n, recipient: "mockcloud-provider", memo: "compute-deployment" });
    expect((await fetch(c.base)).status).toBe(405);

    const r = receipt(newKey(), MOCKCLOUD_TERMS.amount, MOCKCLOUD_TERMS.recipient, MOCKCLOUD_TERMS.memo);
    const created = await pay(c.base, r, { method: "POST", headers: { "Content-Type": "application/json" }, body: deployBody });
    expect(created.status).toBe(201);
    expect(await created.text()).toBe(`{"deployment_id":"dep-0001","wasm_hash":"${"ab".repeat(32)}","status":"pending"}\n`);

    const statuses: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${c.base}/dep-0001`);
      statuses.push(((await res.json()) as { status: string }).status);
    }
    expect(statuses).toEqual(["pending", "provisioning", "running", "running"]);
    const term = await fetch(`${c.base}/dep-0001/terminate`, { method: "POST" });
    expect(((await term.json()) as { status: string }).status).toBe("terminated");
    expect((await fetch(`${c.base}/dep-9999`)).status).toBe(404);

    // The same receipt cannot deploy twice.
    const again = await pay(c.base, r, { method: "POST", body: deployBody });
    expect(again.status).toBe(409);
    expect(c.deployments.size).toBe(1);
  });

  it("refuses a paywall receipt, a forged one, and a bad body without burning a good receipt", async () => {
    const c = await cloud();
    const key = newKey();
    const paywallReceipt = receipt(key, PAYWALL_TERMS.amount, PAYWALL_TERMS.recipient, PAYWALL_TERMS.memo);
    expect((await pay(c.base, paywallReceipt, { method: "POST", body: deployBody })).status).toBe(403);
    const good = receipt(key, MOCKCLOUD_TERMS.amount, MOCKCLOUD_TERMS.recipient, MOCKCLOUD_TERMS.memo);
    const forged = Buffer.from(good);
    forged[0]! ^= 0x01;
    expect((await pay(c.base, forged, { method: "POST", body: deployBody })).status).toBe(403);
    expect((await pay(c.base, good, { method: "POST", body: "not json" })).status).toBe(400);
    expect((await pay(c.base, good, { method: "POST", body: deployBody })).status).toBe(201);
    expect(c.stats.refused).toEqual({ wrong_terms: 1, bad_signature: 1 });
  });
});

describe("pricefeed (CoinGecko's simple/price format)", () => {
  it("serves bitcoin and ethereum in USD", async () => {
    const f = await startPricefeed({ host: "127.0.0.1", port: 0 });
    started.push(f);
    const res = await fetch(`http://127.0.0.1:${f.port}/api/v3/simple/price?ids=bitcoin,ethereum&vs_currencies=usd`);
    const body = (await res.json()) as Record<string, { usd: number }>;
    expect(body.bitcoin?.usd).toBe(83456.78);
    expect(body.ethereum?.usd).toBe(1923.45);
    expect((await fetch(`http://127.0.0.1:${f.port}/api/v3/simple/price?ids=doge&vs_currencies=usd`)).status).toBe(400);
  });
});

describe("listen addresses", () => {
  it("parses Go-style addresses as igor's servers take them from PAYWALL_ADDR / MOCKCLOUD_ADDR", () => {
    expect(parseAddr(":8402")).toEqual({ host: undefined, port: 8402 });
    expect(parseAddr("127.0.0.1:0")).toEqual({ host: "127.0.0.1", port: 0 });
    expect(parseAddr("[::1]:8500")).toEqual({ host: "::1", port: 8500 });
    expect(() => parseAddr("8402")).toThrow(/host:port/);
  });

  it("parses a receipt back to its fields", () => {
    const key = newKey();
    const r = parseReceipt(receipt(key, 7n, "a", "bc", 99n));
    expect(r && { amount: r.amount, ts: r.timestampNs, recipient: r.recipient, memo: r.memo }).toEqual({ amount: 7n, ts: 99n, recipient: "a", memo: "bc" });
    expect(r?.publicKey.equals(key.publicRaw)).toBe(true);
  });
});
