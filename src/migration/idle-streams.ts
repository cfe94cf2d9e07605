// Migrate streams a source keeps open, one per peer, after a migration went through: the next
// migration to that peer sends its offer on it instead of opening a stream (a multistream-select
// round trip and a peer-store write on each side). The target waits MIGRATE_IDLE_MS for it.
import type { FrameChannel } from "../p2p/frames.js";
import { MIGRATE_IDLE_MS } from "./context.js";

export class IdleMigrateStreams {
  private readonly idle = new Map<string, { ch: FrameChannel; timer: NodeJS.Timeout }>();

  /** The peer's idle stream if it is still open both ways (it leaves the pool), else null. */
  take(peerId: string): FrameChannel | null {
    const e = this.idle.get(peerId);
    if (!e) return null;
    this.idle.delete(peerId);
    clearTimeout(e.timer);
    if (e.ch.reusable()) return e.ch;
    void e.ch.close();
    return null;
  }

  /** Keeps a stream whose migration went through for the peer's next one (closes it when one is kept already). */
  keep(peerId: string, ch: FrameChannel): void {
    if (this.idle.has(peerId) || !ch.reusable()) {
      void ch.close();
      return;
    }
    const timer = setTimeout(() => {
      if (this.idle.get(peerId)?.ch !== ch) return;
      this.idle.delete(peerId);
      void ch.close();
    }, MIGRATE_IDLE_MS);
    timer.unref();
    this.idle.set(peerId, { ch, timer });
  }

  /** Closes every kept stream (the node is stopping; its p2p host resets whatever is left). */
  closeAll(): void {
    for (const e of this.idle.values()) {
      clearTimeout(e.timer);
      void e.ch.close();
    }
    this.idle.clear();
  }
}
