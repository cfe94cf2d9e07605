import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    setupFiles: ["./test/setup.ts"],
    globalSetup: ["./test/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    // Three test files at once on the 2-core CI machine: most of the suite waits on ticks, timers,
    // processes and disks (a control request's 10 s timeout, a dashboard's polls), and a worker
    // that waits holds its file. Two ran the 178 files in 592 s, three in 548 s (fresh clones,
    // 2026-12-02, all green; load ~5); one at a time took 586 s when the suite was half as long.
    maxWorkers: 3,
    // The files of a worker share one module graph: importing src and libp2p again for each of the
    // 156 files was ~100 s of the run (628 s → 517 s without it, 2026-12-02). What a file starts and
    // leaves running is stopped when it ends (test/setup.ts), so it cannot load the files after it.
    isolate: false,
    include: ["test/**/*.test.ts"],
    exclude: process.env.IGORD_SOAK ? [] : ["test/**/*.soak.test.ts"],
  },
});
