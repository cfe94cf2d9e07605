// An operator's commands on one agent (igord stop / start / remove / resume / upgrade) run one after
// the other. Each awaits a pause, a resume or a load between its checks and its writes: two at once
// on one agent decided on the same stale view (a start and a remove left a removed agent running
// here; start, stop, start resumed it from a checkpoint older than the one the stop had just saved,
// so ticks that had committed ran again). Commands on different agents still run side by side.
export class AgentTurns {
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `command` once every command taken earlier for `id` has ended, however it ended. */
  run<T>(id: string, command: () => Promise<T>): Promise<T> {
    const before = this.tails.get(id) ?? Promise.resolve();
    const result = before.then(command);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(id, tail);
    void tail.then(() => {
      if (this.tails.get(id) === tail) this.tails.delete(id);
    });
    return result;
  }
}
