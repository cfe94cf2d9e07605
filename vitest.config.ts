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
    // there is one). The timing tests hold at that load (two full runs, 2026-11-30). Three ran in
    // 522 s against 628 but left the CPU 97 % busy, which the timing tests are not written for.
    maxWorkers: 2,
    // The files of a worker share one module graph: importing src and libp2p again for each of the
    // 156 files was ~100 s of the run (628 s → 517 s without it, 2026-12-02). What a file starts and
    // leaves running is stopped when it ends (test/setup.ts), so it cannot load the files after it.
    isolate: false,
    include: ["test/**/*.test.ts"],
    exclude: process.env.IGORD_SOAK ? [] : ["test/**/*.soak.test.ts"],
  },
});
