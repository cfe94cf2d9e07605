// Bytes a node holds in frames that have not finished arriving, from peers it does not trust yet.
// Each channel reads one frame at a time, at most MAX_CONTROL_FRAME_BYTES until the node takes
// package chunks on it; but peer ids cost nothing, and a stranger opening stream after stream,
// connection after connection, each with a frame it never finishes, made a fresh node hold hundreds
// of MiB (192 unfinished 1 MiB frames a connection: +200 MiB of RSS). Their sum is bounded here.

/** The most bytes of unfinished frames the node holds, node-wide, on channels of peers it does not trust. */
export const MAX_UNTRUSTED_UNFINISHED_BYTES = 8 * 1024 * 1024;

/** The node-wide count, shared by its inbound channels (FrameChannel counts against it until trusted). */
export class UnfinishedFrames {
  held = 0;

  constructor(readonly limit = MAX_UNTRUSTED_UNFINISHED_BYTES) {}
}
