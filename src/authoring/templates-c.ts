// The files of a C agent project (igord new <name> --lang c): no libc, the igor imports declared in the
// source, built with clang's wasm32 target (clang and wasm-ld from LLVM; not from npm).
import type { ProjectContext } from "./new-project.js";
import { commonFiles } from "./templates-common.js";

/** clang flags of a C agent: freestanding wasm32, no entry point, exports named in the source. */
export const C_FLAGS = ["--target=wasm32", "-O2", "-ffreestanding", "-nostdlib", "-Wl,--no-entry", "-Wl,--strip-all"] as const;

export function cTemplates(c: ProjectContext): Record<string, string> {
  const n = c.name;
  const ident = n.replace(/-/g, "_");
  return {
    ...commonFiles(c, { build: "node build.mjs", devDependencies: { vitest: c.vitestVersion }, counterOffset: 0 }),
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
    [`${n}.c`]: `// ${n}: an igord agent in C, without libc. It counts its ticks and remembers when it was born;
// both are in its checkpoint, so it carries on where it was after a restart or a migration.
// The ABI (exports, hostcalls, replay rules) is igord's docs/AGENT_ABI.md.
#include <stdint.h>

#define IMPORT(name) __attribute__((import_module("igor"), import_name(#name)))
#define EXPORT(name) __attribute__((export_name(#name)))

// Hostcalls (module "igor"); each needs its capability in ${n}.manifest.json.
IMPORT(clock_now) int64_t igor_clock_now(void);
IMPORT(log_emit) void igor_log_emit(const char *ptr, int32_t len);

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
EXPORT(agent_init) void agent_init(void) {}

// One unit of work; the first tick is the agent's birth. Returns non-zero when more work is pending.
EXPORT(agent_tick) int32_t agent_tick(void) {
  if (!st.initialized) {
    st.born_ns = igor_clock_now();
    st.initialized = 1;
  }
  st.ticks++;
  log_tick(st.ticks);
  return 0;
}

EXPORT(agent_checkpoint) int32_t agent_checkpoint(void) {
  put64(checkpoint_buf, st.ticks);
  put64(checkpoint_buf + 8, (uint64_t)st.born_ns);
  checkpoint_buf[16] = st.initialized;
  return STATE_BYTES;
}

EXPORT(agent_checkpoint_ptr) uint8_t *agent_checkpoint_ptr(void) { return checkpoint_buf; }

// The host asks for a buffer, writes the state there, then calls agent_resume with it.
EXPORT(malloc) void *${ident}_malloc(int32_t n) { return n <= STATE_BYTES ? resume_buf : 0; }

// Exactly the inverse of agent_checkpoint: the same bytes must come back out of it.
EXPORT(agent_resume) void agent_resume(const uint8_t *ptr, int32_t len) {
  if (len == 0) return;
  if (len != STATE_BYTES) __builtin_trap();
  st.ticks = get64(ptr);
  st.born_ns = (int64_t)get64(ptr + 8);
  st.initialized = ptr[16];
}
`,
  };
}
