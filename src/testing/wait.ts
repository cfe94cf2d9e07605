// Waiting on events and states, never on fixed sleeps.
import type { EventEmitter } from "node:events";

export function waitForEvent<T>(
  emitter: EventEmitter,
  event: string,
  predicate: (value: T) => boolean = () => true,
  timeoutMs = 10_000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, listener);
      reject(new Error(`timed out after ${timeoutMs}ms waiting for "${event}"`));
    }, timeoutMs);
    const listener = (value: T): void => {
      if (!predicate(value)) return;
      clearTimeout(timer);
      emitter.off(event, listener);
      resolve(value);
    };
    emitter.on(event, listener);
  });
}

/** Re-checks a condition whenever `emitter` emits `event` (and once at the start). */
export function waitUntil(
  check: () => boolean,
  opts: { emitter?: EventEmitter; event?: string; timeoutMs?: number; pollMs?: number; what?: string } = {},
): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    if (check()) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      clearInterval(poll);
      opts.emitter?.off(opts.event ?? "", onEvent);
    };
    const onEvent = (): void => {
      if (check()) {
        done();
        resolve();
      }
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`timed out after ${timeoutMs}ms waiting for ${opts.what ?? "condition"}`));
    }, timeoutMs);
    // A state check without an event source (e.g. a file appearing) re-checks periodically.
    const poll = setInterval(onEvent, opts.pollMs ?? 25);
    if (opts.emitter && opts.event) opts.emitter.on(opts.event, onEvent);
  });
}
