// The signer pool splits large batches into chunks across its threads; every signature must still
// come back to the request it answers.
import { verify } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { generateKey } from "../../../src/identity/keys.js";
import { SIGN_CHUNK_MAX, SignerPool } from "../../../src/identity/signer-pool.js";

let pool: SignerPool | null = null;
afterEach(async () => {
  await pool?.close();
  pool = null;
});

describe("signer pool", () => {
  it("a batch of many chunks, with a key per message, gets each message's own valid signature", async () => {
    pool = new SignerPool(2);
    const n = SIGN_CHUNK_MAX * 5 + 7;
    const keys = Array.from({ length: 8 }, () => generateKey());
    const reqs = Array.from({ length: n }, (_, i) => ({ key: keys[i % keys.length]!, message: new TextEncoder().encode(`message ${i}`) }));
    const sigs = await Promise.all(reqs.map((r) => pool!.sign(r.key, r.message)));
    reqs.forEach((r, i) => {
      expect(verify(null, r.message, r.key.publicKeyObject, sigs[i]!), `signature ${i}`).toBe(true);
      // And not valid for its neighbour's message: no reply was matched to the wrong request.
      const other = reqs[(i + 1) % n]!;
      expect(verify(null, other.message, r.key.publicKeyObject, sigs[i]!)).toBe(false);
    });
  });
});
