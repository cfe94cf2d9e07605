// What the main thread does with a tick's request: nothing that acts on the world past the tick's
// authority, and nothing at all once the worker stopped waiting for the answer.
import { describe, expect, it, vi } from "vitest";
import type { HttpCall } from "../../../src/hostcalls/http.js";
import { generateKey } from "../../../src/identity/keys.js";
import { answerHostIo, type HostIoServices } from "../../../src/wasm/host-io-services.js";

const call = (method: string): HttpCall => ({ method, url: "http://127.0.0.1:1/x", headers: [], body: null, timeoutMs: 1000, readLimit: 10 });

function counting(): { services: HostIoServices; calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    services: {
      http: (c) => {
        calls.push(c.method);
        return Promise.resolve({ kind: "response", status: 200, body: new Uint8Array() });
      },
    },
  };
}

const agent = { agentId: "a" };
const later = () => Date.now() + 60_000;

describe("answerHostIo", () => {
  it("performs a POST within the tick's authority, a GET past it, and refuses a POST past it without performing it", async () => {
    const { services, calls } = counting();
    expect(await answerHostIo(services, agent, { request: { kind: "http", call: call("POST") }, authorityUntilMs: later(), waitsUntilMs: later() })).toMatchObject({ kind: "response" });
    expect(await answerHostIo(services, agent, { request: { kind: "http", call: call("GET") }, authorityUntilMs: Date.now() - 1, waitsUntilMs: later() })).toMatchObject({ kind: "response" });
    expect(await answerHostIo(services, agent, { request: { kind: "http", call: call("POST") }, authorityUntilMs: Date.now() - 1, waitsUntilMs: later() })).toMatchObject({ kind: "refused" });
    expect(calls).toEqual(["POST", "GET"]);
  });

  it("performs nothing once the worker stopped waiting for the answer", async () => {
    const { services, calls } = counting();
    expect(await answerHostIo(services, agent, { request: { kind: "http", call: call("GET") }, authorityUntilMs: null, waitsUntilMs: Date.now() - 1 })).toMatchObject({ kind: "error" });
    expect(calls).toEqual([]);
  });

  it("drops the journal row of a signature the worker did not claim (its tick stopped waiting), and keeps the one it claimed", async () => {
    const rows: string[] = [];
    const services: HostIoServices = {
      journalPayment: (_agent, _tick, receipt) => {
        rows.push(Buffer.from(receipt).toString("hex"));
        return Promise.resolve();
      },
      unjournalPayment: (_agent, receipt) => {
        rows.splice(rows.indexOf(Buffer.from(receipt).toString("hex")), 1);
      },
    };
    const payer = { agentId: "a", identity: generateKey() };
    const sign = (message: string) => ({ request: { kind: "sign" as const, message: Buffer.from(message), tick: 1n }, authorityUntilMs: null, waitsUntilMs: later() });
    expect(await answerHostIo(services, payer, sign("taken"), () => true)).toMatchObject({ kind: "signature" });
    expect(await answerHostIo(services, payer, sign("given up"), () => false)).toMatchObject({ kind: "error" });
    expect(rows.map((r) => Buffer.from(r, "hex").subarray(0, 5).toString())).toEqual(["taken"]);
  });

  it("signs a payment only once the state its tick started from is checkpointed; when that fails, or the authority lapsed meanwhile, nothing is signed or journalled", async () => {
    const steps: string[] = [];
    let checkpointed = true;
    const services: HostIoServices = {
      checkpointBeforeAct: (agentId, act) => {
        steps.push(`checkpoint ${agentId} ${act}`);
        return Promise.resolve(checkpointed);
      },
      journalPayment: () => {
        steps.push("journal");
        return Promise.resolve();
      },
    };
    const payer = { agentId: "a", identity: generateKey() };
    const sign = (authorityUntilMs: number | null) => ({ request: { kind: "sign" as const, message: Buffer.from("pay"), tick: 3n }, authorityUntilMs, waitsUntilMs: later() });
    expect(await answerHostIo(services, payer, sign(later()))).toMatchObject({ kind: "signature" });
    expect(steps).toEqual(["checkpoint a payment", "journal"]);
    checkpointed = false;
    expect(await answerHostIo(services, payer, sign(later()))).toMatchObject({ kind: "error" });
    expect(steps).toEqual(["checkpoint a payment", "journal", "checkpoint a payment"]);
    // The tick's authority runs out while the checkpoint is written (its clock moves a minute on).
    const now = Date.now();
    services.checkpointBeforeAct = () => {
      vi.spyOn(Date, "now").mockReturnValue(now + 60_000);
      return Promise.resolve(true);
    };
    try {
      expect(await answerHostIo(services, payer, sign(now + 30_000))).toMatchObject({ kind: "error" });
    } finally {
      vi.restoreAllMocks();
    }
    expect(steps.filter((x) => x === "journal")).toHaveLength(1);
  });

  it("sends an HTTP request that acts only once the state its tick started from is checkpointed (a read without one); when that fails, or the authority lapsed meanwhile, nothing is sent", async () => {
    const { services, calls } = counting();
    const checkpoints: string[] = [];
    let checkpointed = true;
    services.checkpointBeforeAct = (agentId, act) => {
      checkpoints.push(`${agentId} ${act}`);
      return Promise.resolve(checkpointed);
    };
    const http = (method: string, authorityUntilMs: number | null = later()) => ({ request: { kind: "http" as const, call: call(method) }, authorityUntilMs, waitsUntilMs: later() });
    expect(await answerHostIo(services, agent, http("GET"))).toMatchObject({ kind: "response" });
    expect(checkpoints).toEqual([]);
    expect(await answerHostIo(services, agent, http("POST"))).toMatchObject({ kind: "response" });
    expect(checkpoints).toEqual(["a http"]);
    checkpointed = false;
    expect(await answerHostIo(services, agent, http("DELETE"))).toMatchObject({ kind: "error" });
    const now = Date.now();
    services.checkpointBeforeAct = () => {
      vi.spyOn(Date, "now").mockReturnValue(now + 60_000);
      return Promise.resolve(true);
    };
    try {
      expect(await answerHostIo(services, agent, http("PUT", now + 30_000))).toMatchObject({ kind: "refused" });
    } finally {
      vi.restoreAllMocks();
    }
    expect(calls).toEqual(["GET", "POST"]);
  });
});
