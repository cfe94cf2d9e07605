// Where an agent's HTTP request may connect. An agent (dropped in agents/ or migrated here from a
// peer) must not reach what only this machine can: its loopback services, the cloud metadata
// endpoint, the operator's private networks. So by default a request connects to public unicast
// addresses only; the operator opens a non-public network by naming it (--http-private-networks).
// The manifest's allowed_hosts cannot: the agent brings its manifest with it.
//
// The check is on the address the socket connects to: an IP literal in the URL before the request,
// and every address a host name resolves to inside the connection's own lookup, so a name that
// resolves to a private address (or a DNS answer that changes between two lookups) is caught where
// the connection is made, not beside it.
import { isIP } from "node:net";
import { ErrorCode, IgordError } from "../errors.js";

/** A network: its first address's bytes (4 or 16) and the prefix length in bits. */
export interface Network {
  bytes: Uint8Array;
  prefix: number;
}

/**
 * IPv4 ranges that are not public unicast (IANA's special-purpose registry): "this network",
 * private, shared (CGNAT), loopback, link-local (cloud metadata), IETF protocol assignments,
 * documentation, 6to4 relay, benchmarking, multicast, reserved and broadcast.
 */
const NON_PUBLIC_V4 = ["0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4"];
/** IPv6 public unicast is within 2000::/3; inside it these are not (IETF assignments incl. Teredo, documentation, 6to4). */
const GLOBAL_V6 = "2000::/3";
const NON_PUBLIC_IN_GLOBAL_V6 = ["2001::/23", "2001:db8::/32", "2002::/16", "3fff::/20"];

/** The 4 or 16 bytes of an IP address, or null when `text` is not one. */
export function addressBytes(text: string): Uint8Array | null {
  const kind = isIP(text);
  if (kind === 4) return Uint8Array.from(text.split(".").map(Number));
  if (kind !== 6) return null;
  const zone = text.indexOf("%");
  let t = zone >= 0 ? text.slice(0, zone) : text;
  const out = new Uint8Array(16);
  // A trailing dotted IPv4 (::ffff:1.2.3.4) becomes its two hextets.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(t);
  if (dotted) {
    const v4 = dotted[1]!.split(".").map(Number);
    t = `${t.slice(0, dotted.index)}${((v4[0]! << 8) | v4[1]!).toString(16)}:${((v4[2]! << 8) | v4[3]!).toString(16)}`;
  }
  const [head, tail] = t.includes("::") ? t.split("::") : [t, undefined];
  const hi = head ? head.split(":") : [];
  const lo = tail === undefined ? [] : tail ? tail.split(":") : [];
  const groups = tail === undefined ? hi : [...hi, ...Array<string>(8 - hi.length - lo.length).fill("0"), ...lo];
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 0xff;
  });
  return out;
}

/** An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as the IPv4 address it is; any other as it is. */
function unmapped(bytes: Uint8Array): Uint8Array {
  if (bytes.length !== 16) return bytes;
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return bytes;
  return bytes[10] === 0xff && bytes[11] === 0xff ? bytes.subarray(12) : bytes;
}

/** Parses `a.b.c.d/n`, `x:y::/n`, or a single address (a /32 or /128 network). */
export function parseNetwork(text: string): Network | string {
  const slash = text.indexOf("/");
  const addr = slash >= 0 ? text.slice(0, slash) : text;
  const raw = addressBytes(addr);
  if (!raw) return `"${text}" is not an IP address or network (e.g. 10.0.0.0/8, 127.0.0.1, fd00::/8)`;
  const bytes = unmapped(raw);
  const bits = bytes.length * 8;
  const given = slash >= 0 ? text.slice(slash + 1) : String(raw.length * 8);
  if (!/^\d{1,3}$/.test(given) || Number(given) > raw.length * 8) return `"${text}": the prefix length must be 0–${raw.length * 8}`;
  // A mapped network (::ffff:10.0.0.0/104) is the IPv4 network it maps.
  const prefix = Number(given) - (raw.length * 8 - bits);
  if (prefix < 0) return `"${text}": a prefix shorter than /96 on ::ffff:0:0 is not an IPv4 network`;
  return { bytes, prefix };
}

function within(bytes: Uint8Array, net: Network): boolean {
  if (bytes.length !== net.bytes.length) return false;
  const whole = net.prefix >> 3;
  for (let i = 0; i < whole; i++) if (bytes[i] !== net.bytes[i]) return false;
  const rest = net.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (bytes[whole]! & mask) === (net.bytes[whole]! & mask);
}

const networks = (list: readonly string[]): Network[] => list.map((n) => parseNetwork(n) as Network);
/**
 * The tables above, parsed on first use: parsing them at import made every CLI command that loads
 * the configuration (`igord --help`, `igord status`) compile node's IPv6 address pattern, ~10 ms.
 */
let parsed: { v4NonPublic: Network[]; v6Global: Network; v6NonPublic: Network[] } | null = null;

/** Whether `bytes` (4 or 16) is a public unicast address. */
function isPublic(bytes: Uint8Array): boolean {
  parsed ??= { v4NonPublic: networks(NON_PUBLIC_V4), v6Global: networks([GLOBAL_V6])[0]!, v6NonPublic: networks(NON_PUBLIC_IN_GLOBAL_V6) };
  if (bytes.length === 4) return !parsed.v4NonPublic.some((n) => within(bytes, n));
  return within(bytes, parsed.v6Global) && !parsed.v6NonPublic.some((n) => within(bytes, n));
}

/** Which addresses agents' requests may connect to: public ones, and the operator's named networks. */
export class DestinationPolicy {
  private readonly opened: Network[];

  /** `privateNetworks`: --http-private-networks, already validated (config/schema.ts). */
  constructor(privateNetworks: readonly string[]) {
    this.opened = privateNetworks.map((n) => {
      const net = parseNetwork(n);
      if (typeof net === "string") throw new IgordError(ErrorCode.ConfigInvalid, `--http-private-networks: ${net}`);
      return net;
    });
  }

  allows(address: string): boolean {
    const raw = addressBytes(address);
    if (!raw) return false;
    const bytes = unmapped(raw);
    return isPublic(bytes) || this.opened.some((n) => within(bytes, n));
  }

  /** Throws HTTP_DESTINATION_REFUSED unless `address` may be connected to. */
  check(host: string, address: string): void {
    if (!this.allows(address)) throw refusal(host, address);
  }
}

/** The error for a connection to `address` (what `host` names) that the policy does not allow. */
export function refusal(host: string, address: string): IgordError {
  return new IgordError(ErrorCode.HttpDestinationRefused, `${host} is ${address}, not a public address and not in --http-private-networks`);
}
