// A freestanding C agent (clang --target=wasm32, no libc): counts its ticks and logs the recorded
// time through igor hostcalls. Capabilities: clock, log. Built by scripts/build-c-agents.sh.
#include <stddef.h>
#include "igor.h"

typedef struct {
  uint64_t ticks;
  int64_t first_ns;
  int64_t last_ns;
} state_t;

static state_t state;
static state_t saved;                    // what agent_checkpoint hands the host
static unsigned char resume_buf[sizeof(state_t)];

// Without libc, clang still lowers struct copies and zeroing to calls to memcpy/memset.
void *memcpy(void *dst, const void *src, size_t n) {
  unsigned char *d = dst;
  const unsigned char *s = src;
  while (n--) *d++ = *s++;
  return dst;
}

void *memset(void *dst, int c, size_t n) {
  unsigned char *d = dst;
  while (n--) *d++ = (unsigned char)c;
  return dst;
}

// The host allocates the resume buffer with malloc: one state's worth is all it ever asks for.
IGOR_EXPORT(malloc) void *malloc(size_t n) { return n <= sizeof resume_buf ? resume_buf : NULL; }

static char *put_str(char *p, const char *s) {
  while (*s) *p++ = *s++;
  return p;
}

static char *put_u64(char *p, uint64_t v) {
  char tmp[20];
  int n = 0;
  do tmp[n++] = (char)('0' + v % 10); while ((v /= 10) != 0);
  while (n) *p++ = tmp[--n];
  return p;
}

IGOR_EXPORT(agent_init) void agent_init(void) {}

IGOR_EXPORT(agent_tick) int32_t agent_tick(void) {
  int64_t now = igor_clock_now();
  if (state.ticks == 0) state.first_ns = now;
  state.ticks++;
  state.last_ns = now;
  char line[96];
  char *p = put_str(line, "c-ticker: tick ");
  p = put_u64(p, state.ticks);
  p = put_str(p, ", ");
  p = put_u64(p, (uint64_t)(state.last_ns - state.first_ns) / 1000000u);
  p = put_str(p, " ms since the first");
  igor_log_emit(line, (int32_t)(p - line));
  return 0;
}

IGOR_EXPORT(agent_checkpoint) int32_t agent_checkpoint(void) {
  saved = state;
  return sizeof saved;
}

IGOR_EXPORT(agent_checkpoint_ptr) int32_t agent_checkpoint_ptr(void) { return (int32_t)(uintptr_t)&saved; }

IGOR_EXPORT(agent_resume) void agent_resume(int32_t ptr, int32_t len) {
  if (len == (int32_t)sizeof state) state = *(const state_t *)(uintptr_t)ptr;
}
