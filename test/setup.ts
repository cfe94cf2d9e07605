import "../src/shim/promise-with-resolvers.js";
import { afterAll } from "vitest";
import { stopAll } from "../src/testing/cluster.js";

// Test files share their worker's process (vitest.config.ts, isolate: false): whatever a file
// started and left (in-process nodes, igord processes, kit clusters, their temp dirs) is stopped
// when the file ends, so it cannot load or disturb the files that run after it.
afterAll(stopAll);
