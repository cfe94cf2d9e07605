// Real igord processes come from the test kit (src/testing, published as igord/testing).
export { BIN, type Daemon, igord, killAll, startDaemon } from "../../src/testing/process.js";
