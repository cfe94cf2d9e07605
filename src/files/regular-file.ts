// Reading operator-supplied files (agent modules, manifests) safely: only regular files, never more
// than a named limit. The file is opened non-blocking and checked on the open descriptor, so a FIFO
// or device put where a module is expected can neither block the main thread nor be swapped in
// between a check and the read.
import { closeSync, constants, fstatSync, openSync, readSync, type Stats, statSync } from "node:fs";

export type FileProblem =
  | { kind: "missing"; detail: string }
  | { kind: "not_regular"; detail: string }
  | { kind: "too_large"; size: number; limit: number }
  | { kind: "unreadable"; detail: string };

export class FileReadError extends Error {
  constructor(
    readonly path: string,
    readonly problem: FileProblem,
  ) {
    super(`${path}: ${describeProblem(problem)}`);
  }
}

export function describeProblem(p: FileProblem): string {
  switch (p.kind) {
    case "missing":
      return p.detail === "ENOENT" ? "does not exist (ENOENT)" : `cannot be opened (${p.detail})`;
    case "not_regular":
      return `is not a regular file (${p.detail})`;
    case "too_large":
      return `is ${p.size} bytes, more than the ${p.limit}-byte limit`;
    case "unreadable":
      return `cannot be read (${p.detail})`;
  }
}

/** What kind of non-regular file a stat describes, in words. */
export function fileKind(s: { isDirectory(): boolean; isFIFO(): boolean; isSocket(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isSymbolicLink(): boolean }): string {
  if (s.isDirectory()) return "a directory";
  if (s.isFIFO()) return "a FIFO";
  if (s.isSocket()) return "a socket";
  if (s.isCharacterDevice() || s.isBlockDevice()) return "a device";
  if (s.isSymbolicLink()) return "a symbolic link";
  return "not a plain file";
}

/**
 * The path's stat (links followed) when it is a regular file, else why it is not something to read
 * as an agent file. Never opens it.
 */
export function statRegularFile(path: string): { stat: Stats; problem: null } | { stat: null; problem: FileProblem } {
  try {
    const s = statSync(path);
    return s.isFile() ? { stat: s, problem: null } : { stat: null, problem: { kind: "not_regular", detail: fileKind(s) } };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    return { stat: null, problem: { kind: "missing", detail: code === "ENOENT" ? "no such file, or a link to nothing" : code } };
  }
}

/**
 * Reads a regular file of at most `maxBytes` bytes; throws FileReadError naming the problem. With
 * `links: "refuse"` a symbolic link at `path` is not followed but refused (a folder someone else
 * made, whose link could point at any file of the reader's).
 */
export function readRegularFile(path: string, maxBytes: number, links: "follow" | "refuse" = "follow"): Uint8Array<ArrayBuffer> {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | (links === "refuse" ? constants.O_NOFOLLOW : 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ELOOP" && links === "refuse") throw new FileReadError(path, { kind: "not_regular", detail: "a symbolic link" });
    throw new FileReadError(path, { kind: "missing", detail: code ?? (e as Error).message });
  }
  try {
    const s = fstatSync(fd);
    if (!s.isFile()) throw new FileReadError(path, { kind: "not_regular", detail: fileKind(s) });
    if (s.size > maxBytes) throw new FileReadError(path, { kind: "too_large", size: s.size, limit: maxBytes });
    // Read what the size promised, plus one byte to see a file that grew past the limit meanwhile.
    const buf = new Uint8Array(Math.min(s.size, maxBytes) + 1);
    let n = 0;
    for (;;) {
      const r = readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
      if (n === buf.length) {
        if (n > maxBytes) throw new FileReadError(path, { kind: "too_large", size: n, limit: maxBytes });
        break;
      }
    }
    return buf.slice(0, n);
  } catch (e) {
    if (e instanceof FileReadError) throw e;
    throw new FileReadError(path, { kind: "unreadable", detail: (e as NodeJS.ErrnoException).code ?? (e as Error).message });
  } finally {
    closeSync(fd);
  }
}
