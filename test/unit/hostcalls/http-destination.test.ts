// Which addresses an agent's HTTP request may connect to: public unicast, and the networks the
// operator opens with --http-private-networks; every spelling of a non-public address is caught.
import { describe, expect, it } from "vitest";
import { ErrorCode, isIgordError } from "../../../src/errors.js";
import { addressBytes, DestinationPolicy, parseNetwork } from "../../../src/hostcalls/http-destination.js";
import { loadConfig } from "../../../src/config/load.js";

const NON_PUBLIC = [
  "0.0.0.0", "0.1.2.3", "10.0.0.1", "10.255.255.255", "100.64.0.1", "100.127.255.254", "127.0.0.1", "127.255.0.9",
  "169.254.169.254", "172.16.0.1", "172.31.255.255", "192.0.0.8", "192.0.2.1", "192.88.99.1", "192.168.1.1",
  "198.18.0.1", "198.19.255.255", "198.51.100.7", "203.0.113.9", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
  "::", "::1", "::ffff:127.0.0.1", "::ffff:7f00:1", "::ffff:a9fe:a9fe", "::ffff:10.1.2.3", "64:ff9b::7f00:1", "100::1",
  "2001::1", "2001:db8::1", "2002:7f00:1::1", "3fff::1", "fc00::1", "fd12:3456::1", "fe80::1", "fe80::1%eth0", "fec0::1", "ff02::1",
];
const PUBLIC = ["1.1.1.1", "8.8.8.8", "100.63.255.255", "100.128.0.0", "172.15.255.255", "172.32.0.0", "192.169.0.1", "198.20.0.1", "223.255.255.255", "::ffff:8.8.8.8", "2001:4860:4860::8888", "2606:4700::1111", "2001:200::1"];

describe("http destinations", () => {
  it("a fresh node allows public unicast addresses only, however the address is spelled", () => {
    const policy = new DestinationPolicy([]);
    for (const a of NON_PUBLIC) expect(policy.allows(a), a).toBe(false);
    for (const a of PUBLIC) expect(policy.allows(a), a).toBe(true);
    expect(policy.allows("not-an-address")).toBe(false);
  });

  it("the operator's networks open exactly what they cover, IPv4-mapped addresses included", () => {
    const policy = new DestinationPolicy(["127.0.0.0/8", "10.1.0.0/16", "fd00::/8", "192.168.7.7"]);
    for (const a of ["127.0.0.1", "127.9.9.9", "::ffff:127.0.0.1", "10.1.200.3", "fd12::1", "192.168.7.7"]) expect(policy.allows(a), a).toBe(true);
    for (const a of ["::1", "10.2.0.1", "fc00::1", "192.168.7.8", "169.254.169.254"]) expect(policy.allows(a), a).toBe(false);
  });

  it("a refused address is a typed error that names the host and the address", () => {
    let err: unknown;
    try {
      new DestinationPolicy([]).check("metadata.internal", "169.254.169.254");
    } catch (e) {
      err = e;
    }
    expect(isIgordError(err) && err.code === ErrorCode.HttpDestinationRefused).toBe(true);
    expect((err as Error).message).toMatch(/metadata\.internal is 169\.254\.169\.254/);
  });

  it("reads addresses and networks to their bytes and prefix", () => {
    expect([...addressBytes("::ffff:1.2.3.4")!]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 1, 2, 3, 4]);
    expect([...addressBytes("2001:db8::8:1")!]).toEqual([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 1]);
    expect(addressBytes("example.com")).toBeNull();
    expect(parseNetwork("::ffff:10.0.0.0/104")).toEqual({ bytes: new Uint8Array([10, 0, 0, 0]), prefix: 8 });
    expect(parseNetwork("fd00::/8")).toMatchObject({ prefix: 8 });
    for (const bad of ["10.0.0.0/33", "::1/129", "10.0.0.0/x", "localhost", "10.0.0/8", "::ffff:0:0/90"]) expect(typeof parseNetwork(bad), bad).toBe("string");
  });

  it("--http-private-networks takes a comma list or none, and a bad network is a config error that names it", () => {
    const cfg = (v: string) => loadConfig({ flags: { "http-private-networks": v }, env: {} }).httpPrivateNetworks;
    expect(loadConfig({ flags: {}, env: {} }).httpPrivateNetworks).toEqual([]);
    expect(cfg("127.0.0.0/8, 10.0.0.0/8")).toEqual(["127.0.0.0/8", "10.0.0.0/8"]);
    expect(cfg("none")).toEqual([]);
    let err: unknown;
    try {
      cfg("127.0.0.0/8,10.0.0.0/40");
    } catch (e) {
      err = e;
    }
    expect(isIgordError(err) && err.code === ErrorCode.ConfigInvalid).toBe(true);
    expect((err as Error).message).toMatch(/10\.0\.0\.0\/40/);
  });
});
