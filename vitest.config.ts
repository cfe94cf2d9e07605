import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    setupFiles: ["./test/setup.ts"],
    globalSetup: ["./test/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    // Two test files at once: most of the suite waits on ticks, timers, processes and disks, so two
    // run in 325-339 s where one at a time took 586 s on the 2-core CI machine (vitest's default
    // there is one). The timing tests hold at that load (two full runs, 2026-11-30).
    maxWorkers: 2,
    include: ["test/**/*.test.ts"],
    exclude: process.env.IGORD_SOAK ? [] : ["test/**/*.soak.test.ts"],
  },
});
