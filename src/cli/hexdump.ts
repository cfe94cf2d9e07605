// A classic hex dump (offset, 16 bytes in hex, the printable ASCII), for `igord inspect --state`.
export const HEXDUMP_WIDTH = 16;

export function hexdump(bytes: Uint8Array): string[] {
  const lines: string[] = [];
  for (let off = 0; off < bytes.length; off += HEXDUMP_WIDTH) {
    const row = bytes.subarray(off, off + HEXDUMP_WIDTH);
    const hexPart = [...row].map((b) => b.toString(16).padStart(2, "0"));
    // Two groups of eight, as xxd -g1 and hexdump -C show them.
    const left = hexPart.slice(0, 8).join(" ");
    const right = hexPart.slice(8).join(" ");
    const ascii = [...row].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".")).join("");
    lines.push(`${off.toString(16).padStart(8, "0")}  ${left.padEnd(23)}  ${right.padEnd(23)}  |${ascii}|`);
  }
  return lines;
}
