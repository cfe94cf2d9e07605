// A C agent built against wasi-libc (clang --target=wasm32-wasi -mexec-model=reactor): it uses
// printf and time() as any C program would; igord serves them from the recorded clock and the
// agent's log. Its state depends on the time it read, and replays exactly. Capabilities: clock, log.
// Built by scripts/build-c-agents.sh.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "igor.h"

typedef struct {
  uint64_t ticks;
  int64_t started;   // time() at the first tick, seconds
  int64_t last_ns;   // clock_gettime(CLOCK_REALTIME) at the latest tick
  uint64_t mix;      // folds every time read, so any difference in replay changes the state hash
} state_t;

static state_t state;
static state_t saved;

IGOR_EXPORT(agent_init) void agent_init(void) {}

IGOR_EXPORT(agent_tick) int32_t agent_tick(void) {
  time_t now = time(NULL);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
  if (state.ticks == 0) state.started = (int64_t)now;
  state.ticks++;
  state.last_ns = ns;
  state.mix = state.mix * 1099511628211u ^ (uint64_t)ns;
  printf("c-wasi-clock: tick %llu at %lld (%lld s since the first)\n", (unsigned long long)state.ticks,
         (long long)now, (long long)(now - state.started));
  return 0;
}

IGOR_EXPORT(agent_checkpoint) int32_t agent_checkpoint(void) {
  saved = state;
  return sizeof saved;
}

IGOR_EXPORT(agent_checkpoint_ptr) int32_t agent_checkpoint_ptr(void) { return (int32_t)(uintptr_t)&saved; }

// The host allocated ptr with the exported malloc; the agent frees it once copied.
IGOR_EXPORT(agent_resume) void agent_resume(int32_t ptr, int32_t len) {
  if (ptr == 0) return;
  if (len == (int32_t)sizeof state) memcpy(&state, (const void *)(uintptr_t)ptr, sizeof state);
  free((void *)(uintptr_t)ptr);
}
