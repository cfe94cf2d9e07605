// DNS rebinding, defence in depth: a page on another site whose name the attacker re-points at
// 127.0.0.1 makes the browser send requests to the control port that carry the attacker's name in
// `Host`. The port answers only a Host that names it: a loopback name or address, or the host it
// listens on (any address of this machine when it listens on all of them). An address cannot be
// rebound; only a name can.
import { isIP } from "node:net";

/** Hosts that name every interface: listening there, any address of the machine names the port. */
const UNSPECIFIED = new Set(["0.0.0.0", "::"]);

/** The host part of a `Host` header (`name`, `name:port`, `[v6]` or `[v6]:port`), lowercased; null when malformed. */
function hostName(header: string): string | null {
  const h = header.trim().toLowerCase();
  const name = h.startsWith("[") ? /^\[([0-9a-f:.]+)\](?::\d{1,5})?$/.exec(h)?.[1] : /^([^:]+)(?::\d{1,5})?$/.exec(h)?.[1];
  return name === undefined ? null : name.replace(/\.$/, "");
}

/**
 * An IPv6 address in its canonical form (WHATWG URL's: compressed, lowercase, IPv4-mapped in hex);
 * anything else, and an address URL does not take (a zone id, `fe80::1%eth0`), as it is.
 */
function canonical(name: string): string {
  if (isIP(name) !== 6) return name;
  try {
    return new URL(`http://[${name}]/`).hostname.slice(1, -1);
  } catch {
    return name;
  }
}

/** `name` is canonical: `::1`, and 127.0.0.0/8 mapped into IPv6 (`::ffff:7fxx:xxxx`), are loopback. */
function loopback(name: string): boolean {
  if (name === "localhost" || name.endsWith(".localhost")) return true;
  if (isIP(name) === 4) return name.startsWith("127.");
  return name === "::1" || /^::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}$/.test(name);
}

/** Why the control port does not answer a request with this `Host` (listening on `listenHost`), or null when it names the port. */
export function hostRefusal(header: string | undefined, listenHost: string): string | null {
  if (header === undefined || header === "") return "the request has no Host header";
  const parsed = hostName(header);
  const name = parsed === null ? null : canonical(parsed);
  const listen = canonical(listenHost.toLowerCase());
  if (name !== null && (loopback(name) || name === listen || (UNSPECIFIED.has(listen) && isIP(name) !== 0))) return null;
  return `Host "${header.slice(0, 100)}" does not name this control endpoint: it answers loopback names and addresses and its listen host "${listenHost}" (a page on another site that reached it by DNS rebinding sends its own name)`;
}
