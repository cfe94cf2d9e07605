// allowed_hosts entries are host names as an author writes them, and a request's host is the WHATWG
// URL's hostname (punycode for an internationalised name, bracketed for an IPv6 literal, IPv4
// shorthand expanded). Each entry is read the same way at load, so it matches the requests it names;
// an entry that could never match one (a port, a path, a user) is refused at load, naming it.
import { describe, expect, it } from "vitest";
import { ErrorCode, type IgordError, isIgordError } from "../../../src/errors.js";
import { LiveRecorder } from "../../../src/eventlog/recorder.js";
import { HttpResult, httpRequest, parseHttpOptions } from "../../../src/hostcalls/http.js";

const OK = 200;

/** http_request GET `url` by an agent whose manifest allows `allowed`: the result, and the URLs sent. */
function get(allowed: string[], url: string): { result: number; sent: string[] } {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const u = new TextEncoder().encode(url);
  new Uint8Array(memory.buffer).set(new TextEncoder().encode("GET"), 0);
  new Uint8Array(memory.buffer).set(u, 100);
  const sent: string[] = [];
  const ctx = {
    source: new LiveRecorder(),
    memory: () => memory,
    budget: () => 0n,
    price: () => 0n,
    authority: () => true,
    world: {
      nowNs: () => 0n,
      randomFill: () => {},
      http: (c: { url: string }) => {
        sent.push(c.url);
        return { kind: "response" as const, status: OK, body: new Uint8Array(0) };
      },
    },
  };
  const result = httpRequest(ctx, parseHttpOptions({ allowed_hosts: allowed }))(0, 3, 100, u.length, 0, 0, 0, 0, 4096, 1024);
  return { result, sent };
}

function refusal(entry: string): IgordError {
  try {
    parseHttpOptions({ allowed_hosts: ["example.org", entry] });
  } catch (e) {
    if (isIgordError(e)) return e;
    throw e;
  }
  throw new Error(`allowed_hosts entry ${JSON.stringify(entry)} was accepted`);
}

describe("allowed_hosts entries in the forms an author writes", () => {
  it("an internationalised name, an IPv6 literal with or without brackets, IPv4 shorthand and a trailing dot each match requests to their host", () => {
    const cases: [entry: string, url: string][] = [
      ["bücher.example", "http://bücher.example/"],
      ["BÜCHER.example", "http://xn--bcher-kva.example/"],
      ["xn--bcher-kva.example", "http://bücher.example/"],
      ["::1", "http://[::1]/"],
      ["[::1]", "http://[::1]:8080/"],
      ["0:0:0:0:0:0:0:1", "http://[::1]/"],
      ["127.1", "http://127.0.0.1/"],
      ["example.com.", "http://example.com./"],
      ["API.Example.com", "https://api.example.com:8443/x"],
    ];
    expect(cases.map(([entry, url]) => [entry, get([entry], url).result])).toEqual(cases.map(([entry]) => [entry, OK]));
  });

  it("an entry still names only its own host", () => {
    expect(get(["bücher.example"], "http://bucher.example/")).toEqual({ result: HttpResult.refused, sent: [] });
    expect(get(["::1"], "http://127.0.0.1/")).toEqual({ result: HttpResult.refused, sent: [] });
  });

  it("an entry with a port, a path, a user, a query or fragment, or that is no host name is MANIFEST_INVALID naming it", () => {
    for (const entry of ["example.com:8080", "example.com:80", "[::1]:8080", "example.com/api", "example.com/", "user@example.com", "example.com?x", "example.com#x", "http://example.com", "", " example.com", "exa mple.com", "[::1", "a\\b"]) {
      const err = refusal(entry);
      expect(err.code, JSON.stringify(entry)).toBe(ErrorCode.ManifestInvalid);
      expect(err.message, JSON.stringify(entry)).toContain(JSON.stringify(entry));
    }
  });
});
