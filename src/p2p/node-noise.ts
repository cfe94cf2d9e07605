// The node's Noise encrypter: libp2p's, with each TCP connection it secures writing each message in
// one socket write (coalesced-writes.ts) and reading without an exception per read (noise-reads.ts).
import { coalesceWrites } from "./coalesced-writes.js";
import { noise } from "./libp2p-modules.js";
import { quietShortReads } from "./noise-reads.js";

type NoiseFactory = ReturnType<typeof noise>;
type Encrypter = ReturnType<NoiseFactory>;

export function nodeNoise(): NoiseFactory {
  const base = noise();
  return (components) => {
    const encrypter: Encrypter = base(components);
    const inbound = encrypter.secureInbound.bind(encrypter);
    const outbound = encrypter.secureOutbound.bind(encrypter);
    const secured = <C extends { connection: unknown }>(c: C): C => (quietShortReads(c.connection), c);
    encrypter.secureInbound = async (connection, options) => secured(await inbound(coalesceWrites(connection), options));
    encrypter.secureOutbound = async (connection, options) => secured(await outbound(coalesceWrites(connection), options));
    return encrypter;
  };
}
