/*
 * igor.h: the igord agent ABI for C (clang, --target=wasm32 or wasm32-wasi).
 *
 * Hostcalls are imported from the "igor" module; each (but resume_interrupted) needs its capability in the agent's manifest
 * (deny by default: an import whose capability is not granted refuses the module at load). Every call
 * appends one entry to the tick's event log and is served back from it in replay. Hostcalls never
 * trap: they return codes (>= 0 success, < 0 error; see docs/AGENT_ABI.md).
 *
 * An agent defines the five lifecycle exports below with IGOR_EXPORT, e.g.
 *     IGOR_EXPORT(agent_tick) int32_t agent_tick(void) { ...; return 0; }
 * and, when it has state to resume, a `malloc` export the host allocates the resume buffer with.
 */
#ifndef IGOR_H
#define IGOR_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IGOR_IMPORT(name) __attribute__((import_module("igor"), import_name(#name)))
#define IGOR_EXPORT(name) __attribute__((export_name(#name)))

/* Result codes shared by hostcalls. */
#define IGOR_OK 0
#define IGOR_ERR_TOO_LARGE (-2)
#define IGOR_ERR_AUTHORITY (-3)
#define IGOR_ERR_OUT_OF_BOUNDS (-4)

/* capability "clock" (event id 1): Unix time in nanoseconds, recorded. */
IGOR_IMPORT(clock_now) int64_t igor_clock_now(void);

/* capability "rand" (event id 2): fills buf[0..len) with recorded random bytes; returns len,
 * 0 for len 0, -2 when len < 0 or above 64 MiB, -4 when buf is outside memory. */
IGOR_IMPORT(rand_bytes) int32_t igor_rand_bytes(void *buf, int32_t len);

/* capability "log" (event id 3): one log line, printed when the tick commits; replay compares it
 * byte for byte. Above 1 MiB it is dropped (result -2 in the log). */
IGOR_IMPORT(log_emit) void igor_log_emit(const void *msg, int32_t len);

/* capability "wallet" (event id 4): the agent's budget in microcents at the start of the tick. */
IGOR_IMPORT(wallet_balance) int64_t igor_wallet_balance(void);

/* capability "wallet" (event id 5): how many receipts the node holds for the agent; -5 when the node
 * could not answer in time (not "none"). */
IGOR_IMPORT(wallet_receipt_count) int32_t igor_wallet_receipt_count(void);

/* capability "wallet" (event id 6): copies receipt `index` into buf and returns its length; -1 bad
 * index, -4 buffer too small or outside memory, -5 the node could not answer in time. */
IGOR_IMPORT(wallet_receipt) int32_t igor_wallet_receipt(int32_t index, void *buf, int32_t cap);

/* capability "pricing" (event id 7): the node's price in microcents per second. */
IGOR_IMPORT(node_price) int64_t igor_node_price(void);

/* capability "http" (event id 8): an HTTP request; GET and HEAD observe, any other method is a side
 * effect (ACTIVE_OWNER only). The response is written to resp as [u32 body length][body]. Returns the
 * HTTP status, or -1 transport error, -2 an argument above its limit, -3 refused (host not in the
 * manifest's allowed_hosts, or no authority), -4 timeout, -5 response too large (the body length is
 * written at resp when resp_cap >= 4). Headers are "Key: Value" lines. Replay never sends it again. */
IGOR_IMPORT(http_request) int32_t igor_http_request(const char *method, int32_t method_len, const char *url,
                                                    int32_t url_len, const char *headers, int32_t headers_len,
                                                    const void *body, int32_t body_len, void *resp,
                                                    int32_t resp_cap);

/* capability "x402" (event id 9), a side effect (ACTIVE_OWNER only): pays `amount` microcents from
 * the agent's budget to `recipient` and writes [u32 len][receipt signed with the agent's key] at out;
 * returns 4 + len. -1 budget too low, -2 recipient/memo too long, -3 recipient not allowed or no
 * authority, -4 above max_payment_microcents, -5 out too small (the receipt length written at out),
 * -6 bad argument. Replay returns the recorded receipt and never pays again. */
IGOR_IMPORT(wallet_pay) int32_t igor_wallet_pay(int64_t amount, const char *recipient, int32_t recipient_len,
                                                const char *memo, int32_t memo_len, void *out, int32_t out_cap);

/* capability "emit" (event id 10), a side effect: publishes msg to the agent's outbox when the tick
 * commits. 0 ok, -2 above 64 KiB, -3 the node is not the agent's active owner, -4 outside memory. */
IGOR_IMPORT(emit) int32_t igor_emit(const void *msg, int32_t len);

/* no capability (event id 20, an igord extension): 1 during the first tick of an instance resumed
 * after an interruption (a crash, a discarded tick, a failure), when a tick may have run without being
 * committed; 0 otherwise. Ask it in agent_tick, never in agent_resume. */
IGOR_IMPORT(resume_interrupted) int32_t igor_resume_interrupted(void);

/* Lifecycle exports, defined by the agent (declared here so their signatures are checked). */
void agent_init(void);
int32_t agent_tick(void);             /* non-zero: more work pending (fast cadence) */
int32_t agent_checkpoint(void);       /* serialise state, return its length (0 = empty) */
int32_t agent_checkpoint_ptr(void);   /* address of the serialised state */
void agent_resume(int32_t ptr, int32_t len); /* restore; (0, 0) for empty state */

#ifdef __cplusplus
}
#endif

#endif /* IGOR_H */
