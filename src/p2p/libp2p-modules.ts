// Every value igord takes from libp2p and its transports, from one module. The build bundles this
// module with everything it imports into one file (scripts/bundle-libp2p.mjs), so a node that
// listens loads libp2p as one module instead of ~325: Node's ESM loader spent most of libp2p's
// import (~0.5 s on the reference VM, quiet) resolving and linking them one by one. Types are still
// imported from the packages themselves; run from source (vitest), this module re-exports them as is.
export { noise } from "@chainsafe/libp2p-noise";
export { yamux } from "@chainsafe/libp2p-yamux";
export { StreamState } from "@chainsafe/libp2p-yamux/stream";
export { bootstrap } from "@libp2p/bootstrap";
export { generateKeyPairFromSeed } from "@libp2p/crypto/keys";
export { identify } from "@libp2p/identify";
export { mdns } from "@libp2p/mdns";
export { peerIdFromString } from "@libp2p/peer-id";
export { ping } from "@libp2p/ping";
export { tcp } from "@libp2p/tcp";
export { multiaddr } from "@multiformats/multiaddr";
export { createLibp2p } from "libp2p";
