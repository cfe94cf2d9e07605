import "../src/shim/promise-with-resolvers.js";
