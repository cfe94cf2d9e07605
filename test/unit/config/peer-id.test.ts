// The config's peer-id check (--trusted-peer, --bootstrap's /p2p/ part) takes what libp2p takes for
// a peer's id and refuses what it refuses, without loading libp2p: base58 text of a peer id's length
// that decoded to no peer id was taken, and a trusted peer so given could never match.
import { generateKeyPair } from "@libp2p/crypto/keys";
import { peerIdFromPrivateKey, peerIdFromString } from "@libp2p/peer-id";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../../src/config/load.js";
import { peerIdProblem } from "../../../src/config/peer-id.js";
import { isIgordError } from "../../../src/errors.js";
import { base58Encode } from "../../../src/hash/base58.js";

/** An RSA peer's id (the SHA-256 multihash of its key), as libp2p writes it. */
const RSA_PEER = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N";
/** Base58 of a peer id's length whose bytes are no multihash of a key: 46 zero bytes. */
const ZEROS = "1".repeat(46);

function libp2pTakes(text: string): boolean {
  try {
    peerIdFromString(text);
    return true;
  } catch {
    return false;
  }
}

function configError(flags: Record<string, string>, env: Record<string, string> = {}): Error {
  try {
    loadConfig({ flags, env });
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected the config to be refused");
}

describe("a peer id in the config", () => {
  it("takes the ids libp2p gives Ed25519, secp256k1 and RSA peers", async () => {
    const ed = peerIdFromPrivateKey(await generateKeyPair("Ed25519")).toString();
    const secp = peerIdFromPrivateKey(await generateKeyPair("secp256k1")).toString();
    for (const id of [ed, secp, RSA_PEER]) {
      expect(libp2pTakes(id)).toBe(true);
      expect({ id, problem: peerIdProblem(id) }).toEqual({ id, problem: null });
    }
  });

  it("refuses, as libp2p does, base58 that decodes to no peer id: zeros, a cut id, an id with a byte more, a key type libp2p does not inline", async () => {
    const ed = peerIdFromPrivateKey(await generateKeyPair("Ed25519")).toString();
    const cut = ed.slice(0, -1);
    const longer = `${RSA_PEER}1`;
    // An identity multihash of a protobuf key of type 0 (RSA), whose keys libp2p hashes instead.
    const inlinedRsa = base58Encode(Uint8Array.from([0x00, 36, 0x08, 0x00, 0x12, 0x20, ...new Uint8Array(32).fill(7)]));
    for (const text of [ZEROS, cut, longer, inlinedRsa, "bob", "12D3KooW0"]) {
      expect({ text, libp2p: libp2pTakes(text) }).toEqual({ text, libp2p: false });
      expect(peerIdProblem(text)).not.toBeNull();
    }
  });

  it("names the flag, the variable or the config key that holds a bad one, in --trusted-peer and in --bootstrap's /p2p/ part", () => {
    const trusted = configError({ "trusted-peer": ZEROS });
    expect(isIgordError(trusted, "CONFIG_INVALID")).toBe(true);
    expect(trusted.message).toMatch(new RegExp(`^invalid --trusted-peer "${ZEROS}": "${ZEROS}" is not a peer id`));
    expect(configError({}, { IGORD_TRUSTED_PEER: ZEROS }).message).toMatch(/^invalid IGORD_TRUSTED_PEER/);
    const bootstrap = configError({ bootstrap: `/ip4/127.0.0.1/tcp/9/p2p/${ZEROS}`, listen: "/ip4/127.0.0.1/tcp/0" });
    expect(isIgordError(bootstrap, "CONFIG_INVALID")).toBe(true);
    expect(bootstrap.message).toMatch(/^invalid --bootstrap .*is not a peer id/);
  });
});
