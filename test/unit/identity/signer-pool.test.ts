// The signer pool splits large batches into chunks across its threads; every signature must still
// come back to the request it answers.
import { verify } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { generateKey } from "../../../src/identity/keys.js";
import { SIGN_CHUNK_MAX, SIGNER_KEYS_MAX, SIGNER_THREADS_WINDOW_MS, SignerPool } from "../../../src/identity/signer-pool.js";

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
    expect(pool.fallbacks).toBe(0);
  });
});

describe("signer pool messages in parts", () => {
  it("a message given in parts is signed as the parts joined, by the threads and inline", async () => {
    pool = new SignerPool(2);
    const key = generateKey();
    const reqs = Array.from({ length: SIGN_CHUNK_MAX + 9 }, (_, i) => [new TextEncoder().encode(`head ${i} `), new Uint8Array(0), new TextEncoder().encode(`tail ${i}`)]);
    const sigs = await Promise.all(reqs.map((parts) => pool!.sign(key, parts)));
    reqs.forEach((parts, i) => expect(verify(null, Buffer.concat(parts), key.publicKeyObject, sigs[i]!), `signature ${i}`).toBe(true));
    expect(pool.fallbacks).toBe(0);
    // A batch too small for the threads is signed inline, from the same parts.
    const [one] = await Promise.all([pool.sign(key, reqs[0]!)]);
    expect(verify(null, Buffer.concat(reqs[0]!), key.publicKeyObject, one!)).toBe(true);
  });
});

describe("signer pool keys", () => {
  it("signs with the right key when there are more keys than a thread keeps, batch after batch", async () => {
    // Each thread keeps at most 3 keys: with 11 keys every batch makes the threads start over, and
    // a signature made with a forgotten or a neighbour's key would not verify.
    pool = new SignerPool(2, 3);
    const keys = Array.from({ length: 11 }, () => generateKey());
    for (let round = 0; round < 3; round++) {
      const reqs = Array.from({ length: 40 }, (_, i) => ({ key: keys[(i * 7 + round) % keys.length]!, message: new TextEncoder().encode(`round ${round} message ${i}`) }));
      const sigs = await Promise.all(reqs.map((r) => pool!.sign(r.key, r.message)));
      reqs.forEach((r, i) => expect(verify(null, r.message, r.key.publicKeyObject, sigs[i]!), `round ${round} signature ${i}`).toBe(true));
    }
    // Made by the threads, not by the calling thread after a thread failed (which would also verify).
    expect(pool.fallbacks).toBe(0);
  });

  it("a chunk with more distinct keys than a thread keeps is still signed with each message's key", async () => {
    pool = new SignerPool(1, 2);
    const keys = Array.from({ length: 20 }, () => generateKey());
    const reqs = keys.map((key, i) => ({ key, message: new TextEncoder().encode(`message ${i}`) }));
    const sigs = await Promise.all(reqs.map((r) => pool!.sign(r.key, r.message)));
    reqs.forEach((r, i) => expect(verify(null, r.message, r.key.publicKeyObject, sigs[i]!), `signature ${i}`).toBe(true));
    expect(pool.fallbacks).toBe(0);
  });
});

describe("signer pool threads", () => {
  it("after a signer thread dies, batches still get every signature (its keys go to the other thread)", async () => {
    pool = new SignerPool(2);
    const keys = Array.from({ length: 10 }, () => generateKey());
    const batch = (tag: string) => keys.flatMap((key, k) => Array.from({ length: 4 }, (_, i) => ({ key, message: new TextEncoder().encode(`${tag} ${k} ${i}`) })));
    const first = batch("before");
    await Promise.all(first.map((r) => pool!.sign(r.key, r.message)));
    // Reach into the pool only to kill one of its threads, as a crash would.
    const threads = (pool as unknown as { threads: { worker: { terminate(): Promise<number> } }[] }).threads;
    const exited = threads[0]!.worker.terminate();
    await exited;
    const reqs = batch("after");
    const sigs = await Promise.all(reqs.map((r) => pool!.sign(r.key, r.message)));
    reqs.forEach((r, i) => expect(verify(null, r.message, r.key.publicKeyObject, sigs[i]!), `signature ${i}`).toBe(true));
    // Signed by the surviving thread, which was sent the dead thread's keys, not on the calling thread.
    expect(threads).toHaveLength(1);
    expect(pool.fallbacks).toBe(0);
  });
});

describe("signer pool started when busy", () => {
  it("signs a light load on the calling thread without starting threads, and starts them once signing is busy", async () => {
    pool = new SignerPool(2, SIGNER_KEYS_MAX, "when-busy");
    const key = generateKey();
    const message = (i: number) => new TextEncoder().encode(`message ${i}`);
    // A light load: a few signatures, far below a tenth of a second's time.
    for (let i = 0; i < 5; i++) expect(verify(null, message(i), key.publicKeyObject, await pool.sign(key, message(i)))).toBe(true);
    expect(pool.threadsStarted).toBe(false);
    // Signing without pause: every window measures busy, so the threads start after the first one.
    const deadline = performance.now() + SIGNER_THREADS_WINDOW_MS * 5;
    let i = 5;
    while (!pool.threadsStarted && performance.now() < deadline) await pool.sign(key, message(i++));
    expect(pool.threadsStarted).toBe(true);
    expect(i).toBeGreaterThan(5);
    // A batch now goes to the threads: each signature valid, none made here after a thread failed.
    const reqs = Array.from({ length: SIGN_CHUNK_MAX * 2 }, (_, j) => message(100_000 + j));
    const sigs = await Promise.all(reqs.map((m) => pool!.sign(key, m)));
    reqs.forEach((m, j) => expect(verify(null, m, key.publicKeyObject, sigs[j]!), `signature ${j}`).toBe(true));
    expect((pool as unknown as { threads: unknown[] }).threads).toHaveLength(2);
    expect(pool.fallbacks).toBe(0);
  });
});

describe("signer pool targets", () => {
  // A target (the checkpointer's checkpoint in flight) is told its signature or its failure; a key
  // that cannot sign fails its own target only, whether a thread or the calling thread tried it
  // (inline, a throw there used to escape the pool's callback instead of reaching the request).
  it("each target is told its own signature, or its own failure, from a chunk on a thread and from a batch signed inline", async () => {
    pool = new SignerPool(2);
    const good = generateKey();
    const broken = { ...generateKey(), privateKeyObject: good.publicKeyObject, secretKey: new Uint8Array(0) };
    const run = (n: number, brokenAt: number) =>
      Promise.all(
        Array.from({ length: n }, (_, i) => {
          const message = new TextEncoder().encode(`target ${i}`);
          return new Promise<Uint8Array | Error>((done) => pool!.signFor({ key: i === brokenAt ? broken : good, message, signed: (sig) => done(Uint8Array.from(sig)), signFailed: done })).then((r) => ({ message, r }));
        }),
      );
    for (const [n, brokenAt] of [
      [SIGN_CHUNK_MAX + 3, 5],
      [3, 1],
    ] as const) {
      const results = await run(n, brokenAt);
      results.forEach(({ message, r }, i) => {
        if (i === brokenAt) expect(r, `target ${i} of ${n}`).toBeInstanceOf(Error);
        else expect(r instanceof Uint8Array && verify(null, message, good.publicKeyObject, r), `target ${i} of ${n}`).toBe(true);
      });
    }
  });
});
