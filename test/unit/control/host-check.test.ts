// Which Host headers the control port answers (DNS rebinding, defence in depth): loopback names and
// addresses, its listen host, and any address when it listens on all interfaces; never a name a
// page on another site could have re-pointed at this machine.
import { describe, expect, it } from "vitest";
import { hostRefusal } from "../../../src/control/host-check.js";

const answered = (host: string | undefined, listen: string) => hostRefusal(host, listen) === null;

describe("the control port's Host check", () => {
  it("listening on loopback: loopback names and addresses, with or without a port; nothing else", () => {
    for (const h of ["127.0.0.1:7070", "127.0.0.1", "127.8.9.1:1", "localhost:7070", "LocalHost", "localhost.", "igord.localhost:7070", "[::1]:7070", "[::1]"]) expect([h, answered(h, "127.0.0.1")]).toEqual([h, true]);
    for (const h of ["evil.example:7070", "127.0.0.1.evil.example", "localhost.evil.example:7070", "10.0.0.5:7070", "[::2]:7070", "a:b:c", "[::1", "", undefined]) expect([h, answered(h, "127.0.0.1")]).toEqual([h, false]);
  });

  it("listening on a name or an address: that host too; listening on every interface: any address, still no other name", () => {
    expect(answered("Node7.LAN:7070", "node7.lan")).toBe(true);
    expect(answered("10.0.0.5:7070", "10.0.0.5")).toBe(true);
    expect(answered("10.0.0.6:7070", "10.0.0.5")).toBe(false);
    expect(answered("10.0.0.6:7070", "0.0.0.0")).toBe(true);
    expect(answered("[fe80::1]:7070", "::")).toBe(true);
    expect(answered("node7.lan:7070", "0.0.0.0")).toBe(false);
  });

  it("an IPv6 address is compared in its canonical form: long and IPv4-mapped loopback forms are loopback, a listen address matches however it is written", () => {
    for (const h of ["[0:0:0:0:0:0:0:1]:7070", "[::0:1]", "[::ffff:127.0.0.1]:7070", "[::FFFF:7f00:1]"]) expect([h, answered(h, "127.0.0.1")]).toEqual([h, true]);
    for (const h of ["[::ffff:10.0.0.5]:7070", "[0:0:0:0:0:0:0:2]"]) expect([h, answered(h, "127.0.0.1")]).toEqual([h, false]);
    expect(answered("[fd00:0:0:0:0:0:0:5]:7070", "fd00::5")).toBe(true);
    expect(answered("[fd00::5]:7070", "FD00:0::5")).toBe(true);
    expect(answered("[fd00::6]:7070", "fd00::5")).toBe(false);
    // A listen address with a zone id is compared as written; a Host never carries one.
    expect(answered("[fe80::1]:7070", "fe80::1%eth0")).toBe(false);
    expect(answered("[::1]:7070", "fe80::1%eth0")).toBe(true);
  });
});
