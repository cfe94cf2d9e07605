import { generateKeyPair } from "@libp2p/crypto/keys";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../../src/errors.js";
import { PARSED_PEER_CACHE_SIZE, parsedPeerCacheSizes, parsePeerId, parseTarget } from "../../../src/p2p/host.js";

describe("parsed targets and peer ids", () => {
  it("a target or peer id parsed again is the same value, parsed once", async () => {
    const id = peerIdFromPrivateKey(await generateKeyPair("Ed25519")).toString();
    const text = `/ip4/127.0.0.1/tcp/4001/p2p/${id}`;
    const first = parseTarget(text);
    expect(first.peerId.toString()).toBe(id);
    expect(first.addr?.toString()).toBe(text);
    expect(parseTarget(text)).toBe(first);
    expect(parsePeerId(id)).toBe(first.peerId);
    expect(parseTarget(id).peerId).toBe(first.peerId);
    expect(parseTarget(id).addr).toBeNull();
    expect(Object.isFrozen(first)).toBe(true);
  });

  it("text that is not a target is refused every time, never remembered", () => {
    const before = parsedPeerCacheSizes();
    for (let i = 0; i < 2; i++) {
      expect(() => parsePeerId("not-a-peer-id")).toThrow(expect.objectContaining({ code: ErrorCode.PeerAddressInvalid }));
      expect(() => parseTarget("/ip4/127.0.0.1/tcp/4001")).toThrow(expect.objectContaining({ code: ErrorCode.PeerAddressInvalid }));
    }
    expect(parsedPeerCacheSizes()).toEqual(before);
  });

  it(`keeps at most ${PARSED_PEER_CACHE_SIZE} parsed targets, the oldest dropped first`, async () => {
    const id = peerIdFromPrivateKey(await generateKeyPair("Ed25519")).toString();
    const at = (port: number): string => `/ip4/127.0.0.1/tcp/${port}/p2p/${id}`;
    const oldest = parseTarget(at(1));
    for (let port = 2; port <= PARSED_PEER_CACHE_SIZE + 10; port++) parseTarget(at(port));
    expect(parsedPeerCacheSizes().targets).toBe(PARSED_PEER_CACHE_SIZE);
    const newest = parseTarget(at(PARSED_PEER_CACHE_SIZE + 10));
    expect(parseTarget(at(PARSED_PEER_CACHE_SIZE + 10))).toBe(newest);
    const again = parseTarget(at(1));
    expect(again).not.toBe(oldest);
    expect(again.addr?.toString()).toBe(at(1));
  });
});
