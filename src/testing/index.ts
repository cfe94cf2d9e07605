// igord/testing: start real igord nodes in tests (one, or a cluster of N on free loopback ports with
// temp dirs), in this process or as child processes; load agents, wait for ticks and states without
// sleeps, migrate, SIGKILL and restart, read lineage and outbox, check one owner; tear down in afterEach.
// Reference: docs/TESTING.md.
import "../shim/promise-with-resolvers.js"; // libp2p needs it; Node 20 lacks it
export { type AgentInfo, type Cluster, type ClusterOptions, eventually, type InProcessKitNode, KIT_FLAGS, KIT_WAIT_MS, type KitNode, type Lineage, type NodeMode, type OutboxMessage, startCluster, startNode, stopAll, type StoredCheckpoint } from "./cluster.js";
export { LogCapture, type LogLine, ROOT, startTestNode, stopAllNodes, storedHead, tempDir, type TestNode } from "./node.js";
export { BIN, type Daemon, igord, killAll, startDaemon } from "./process.js";
export { waitForEvent, waitUntil } from "./wait.js";
