// The files of a C agent project (igord new <name> --lang c): no libc, the igor ABI from igor.h (igord's
// sdk/c/igor.h when this install has it, else the declarations below), built with clang's wasm32
// target (clang and wasm-ld from LLVM; not from npm).
import type { ProjectContext } from "./new-project.js";
import { commonFiles } from "./templates-common.js";

/** clang flags of a C agent: freestanding wasm32, no entry point, exports named in the source. */
export const C_FLAGS = ["--target=wasm32", "-O2", "-ffreestanding", "-nostdlib", "-Wl,--no-entry", "-Wl,--strip-all"] as const;

/** igor.h for an igord without sdk/c/igor.h: the same names, for the hostcalls the skeleton may use. */
const FALLBACK_HEADER = `/* igor.h: the igord agent ABI for C (written by igord new; docs/AGENT_ABI.md has every hostcall). */
#ifndef IGOR_H
#define IGOR_H
#include <stdint.h>

#define IGOR_IMPORT(name) __attribute__((import_module("igor"), import_name(#name)))
#define IGOR_EXPORT(name) __attribute__((export_name(#name)))

/* Each needs its capability in the manifest. Hostcalls never trap: >= 0 success, < 0 error. */
IGOR_IMPORT(clock_now) int64_t igor_clock_now(void);                  /* clock: Unix ns */
IGOR_IMPORT(rand_bytes) int32_t igor_rand_bytes(void *buf, int32_t len); /* rand */
IGOR_IMPORT(log_emit) void igor_log_emit(const void *msg, int32_t len);  /* log */
IGOR_IMPORT(wallet_balance) int64_t igor_wallet_balance(void);        /* wallet: microcents */
IGOR_IMPORT(node_price) int64_t igor_node_price(void);                /* pricing: microcents/s */
IGOR_IMPORT(emit) int32_t igor_emit(const void *msg, int32_t len);    /* emit: -3 without authority */

/* Lifecycle exports, defined by the agent. */
void agent_init(void);
int32_t agent_tick(void);
int32_t agent_checkpoint(void);
int32_t agent_checkpoint_ptr(void);
void agent_resume(int32_t ptr, int32_t len);

#endif
`;

export function cTemplates(c: ProjectContext): Record<string, string> {
  const n = c.name;
  const ident = n.replace(/-/g, "_");
  return {
    ...commonFiles(c, { build: "node build.mjs", sources: [`${n}.c`, "igor.h"], devDependencies: { vitest: c.vitestVersion }, counterOffset: 0, buildNeeds: "clang with the wasm32 target and wasm-ld, e.g. apt-get install clang lld" }),
    "build.mjs": `// Builds build/${n}.wasm from ${n}.c with clang's wasm32 target (CLANG=... to pick another clang)
// and puts ${n}.manifest.json next to it (igord loads <name>.wasm with <name>.manifest.json).
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync } from "node:fs";

const C_FLAGS = ${JSON.stringify(C_FLAGS)};

mkdirSync("build", { recursive: true });
const r = spawnSync(process.env.CLANG ?? "clang", [...C_FLAGS, "-o", "build/${n}.wasm", "${n}.c"], { stdio: "inherit" });
if (r.error) {
  console.error(\`cannot run clang: \${r.error.message} (install clang and lld, e.g. apt-get install clang lld)\`);
  process.exit(1);
}
if (r.status !== 0) process.exit(r.status ?? 1);
copyFileSync("${n}.manifest.json", "build/${n}.manifest.json");
console.log("built build/${n}.wasm");
`,
    "igor.h": c.cHeader ?? FALLBACK_HEADER,
    [`${n}.c`]: `// ${n}: an igord agent in C, without libc. It counts its ticks and remembers when it was born;
// both are in its checkpoint, so it carries on where it was after a restart or a migration.
// The ABI (exports, hostcalls, replay rules) is igord's docs/AGENT_ABI.md; igor.h declares it.
#include <stdint.h>
#include "igor.h"

// The whole state: what agent_checkpoint writes and agent_resume reads back, little-endian.
static struct {
  uint64_t ticks;
  int64_t born_ns;
  uint8_t initialized;
} st;

#define STATE_BYTES 17
static uint8_t checkpoint_buf[STATE_BYTES];
static uint8_t resume_buf[STATE_BYTES];

static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint64_t get64(const uint8_t *p) { uint64_t v = 0; for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i); return v; }

static void log_tick(uint64_t n) {
  char msg[48] = "${n.slice(0, 20)}: tick ";
  int len = 0;
  while (msg[len]) len++;
  char digits[20];
  int d = 0;
  do { digits[d++] = (char)('0' + n % 10); n /= 10; } while (n);
  while (d) msg[len++] = digits[--d];
  igor_log_emit(msg, len);
}

// Once per instance. Observations belong in ticks (they are recorded there), so this does nothing.
IGOR_EXPORT(agent_init) void agent_init(void) {}

// One unit of work; the first tick is the agent's birth. Returns non-zero when more work is pending.
IGOR_EXPORT(agent_tick) int32_t agent_tick(void) {
  if (!st.initialized) {
    st.born_ns = igor_clock_now();
    st.initialized = 1;
  }
  st.ticks++;
  log_tick(st.ticks);
  return 0;
}

IGOR_EXPORT(agent_checkpoint) int32_t agent_checkpoint(void) {
  put64(checkpoint_buf, st.ticks);
  put64(checkpoint_buf + 8, (uint64_t)st.born_ns);
  checkpoint_buf[16] = st.initialized;
  return STATE_BYTES;
}

IGOR_EXPORT(agent_checkpoint_ptr) int32_t agent_checkpoint_ptr(void) { return (int32_t)(uintptr_t)checkpoint_buf; }

// The host asks for a buffer, writes the state there, then calls agent_resume with it.
IGOR_EXPORT(malloc) int32_t ${ident}_malloc(int32_t n) { return n <= STATE_BYTES ? (int32_t)(uintptr_t)resume_buf : 0; }

// Exactly the inverse of agent_checkpoint: the same bytes must come back out of it.
IGOR_EXPORT(agent_resume) void agent_resume(int32_t ptr, int32_t len) {
  const uint8_t *p = (const uint8_t *)(uintptr_t)ptr;
  if (len == 0) return;
  if (len != STATE_BYTES) __builtin_trap();
  st.ticks = get64(p);
  st.born_ns = (int64_t)get64(p + 8);
  st.initialized = p[16];
}
`,
  };
}
