// One socket write per message a connection sends, not one per piece. Noise (@chainsafe/libp2p-noise
// 17) hands the TCP connection each message as a list: its 2-byte length, then the ciphertext in as
// many pieces as the plaintext had (a yamux header, a length prefix, the frame...), then the tag;
// @libp2p/tcp (11.x) calls socket.write for every piece. A migration's package went out as seven
// write(2) calls and each control message as two, every one of them running the kernel's TCP path
// and waking the reader (strace: 31 TCP writes per hop). Here the socket is corked for the pieces of
// one message and uncorked right after them, so they leave in one writev, at once: the same bytes, in
// the same order, at the same moment. (Corking until the end of the turn, to join messages too, held
// a message back behind whatever synchronous work followed it in the same turn: the bench's hop p50
// rose from 12.9-16.9 ms to 17.7-20.1 ms.)
import type { Socket } from "node:net";

/** What the wrapper needs of the connection Noise is given: @libp2p/tcp's, which holds its socket. */
interface SocketConnection {
  socket?: unknown;
  sendData?: (data: unknown) => unknown;
}

function isSocket(s: unknown): s is Socket {
  return typeof s === "object" && s !== null && typeof (s as Socket).cork === "function" && typeof (s as Socket).uncork === "function";
}

/** Writes each message's pieces to the connection's socket in one writev. */
export function coalesceWrites<T>(connection: T): T {
  const c = connection as SocketConnection;
  const socket = c.socket;
  const sendData = c.sendData;
  // Any other transport (none today) is passed through as it is.
  if (!isSocket(socket) || typeof sendData !== "function") return connection;
  c.sendData = (data: unknown): unknown => {
    socket.cork();
    try {
      return sendData.call(connection, data);
    } finally {
      socket.uncork();
    }
  };
  return connection;
}
