// The waiting helpers live in the test kit (src/testing, published as igord/testing).
export { waitForEvent, waitUntil } from "../../src/testing/wait.js";
