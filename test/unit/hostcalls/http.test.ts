// The pure parts of http_request: manifest options, igor's header lines, which methods observe.
import { describe, expect, it } from "vitest";
import { ErrorCode, isIgordError } from "../../../src/errors.js";
import { HTTP_DEFAULT_MAX_RESPONSE_BYTES, HTTP_DEFAULT_TIMEOUT_MS, isObservationMethod, parseHeaderLines, parseHttpOptions } from "../../../src/hostcalls/http.js";

describe("http options and headers", () => {
  it("defaults to igor's timeout_ms and max_response_bytes and any host; hosts are matched lowercased", () => {
    expect(parseHttpOptions({})).toEqual({ allowedHosts: [], timeoutMs: HTTP_DEFAULT_TIMEOUT_MS, maxResponseBytes: HTTP_DEFAULT_MAX_RESPONSE_BYTES });
    expect(parseHttpOptions({ allowed_hosts: ["API.Example.com"], timeout_ms: 5000, max_response_bytes: 4096 })).toEqual({ allowedHosts: ["api.example.com"], timeoutMs: 5000, maxResponseBytes: 4096 });
  });

  it("refuses options of the wrong type instead of silently falling back (igor's behaviour)", () => {
    for (const bad of [{ allowed_hosts: "x" }, { allowed_hosts: [1] }, { timeout_ms: "10" }, { timeout_ms: 0 }, { max_response_bytes: 1.5 }, { max_response_bytes: 64 * 1024 * 1024 }]) {
      let err: unknown;
      try {
        parseHttpOptions(bad);
      } catch (e) {
        err = e;
      }
      expect(isIgordError(err) && err.code === ErrorCode.ManifestInvalid, JSON.stringify(bad)).toBe(true);
    }
  });

  it("reads `Key: Value` lines split at the first colon, trimmed, skipping lines without a colon or a name", () => {
    expect(parseHeaderLines("X-Payment: ab:cd\n  Accept :  text/plain \nnot a header\n\n: empty\n")).toEqual([
      ["X-Payment", "ab:cd"],
      ["Accept", "text/plain"],
    ]);
  });

  it("GET and HEAD (any case) are observations; every other method is a side effect", () => {
    expect(["GET", "get", "HEAD", "head"].map(isObservationMethod)).toEqual([true, true, true, true]);
    expect(["POST", "PUT", "DELETE", "PATCH", "OPTIONS"].map(isObservationMethod)).toEqual([false, false, false, false, false]);
  });
});
