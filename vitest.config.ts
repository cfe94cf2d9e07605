import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    setupFiles: ["./test/setup.ts"],
    globalSetup: ["./test/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    include: ["test/**/*.test.ts"],
    exclude: process.env.IGORD_SOAK ? [] : ["test/**/*.soak.test.ts"],
  },
});
