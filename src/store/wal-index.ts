// The WAL index's header (<db>-shm), read without a lock: how many frames the WAL holds and how many
// of them a checkpoint has copied back into the database. SQLite's documented format
// (https://www.sqlite.org/walformat.html, 2.1 "The WAL-Index Header"): the file begins with two
// copies of the 48-byte WalIndexHdr, then the 40-byte WalCkptInfo, integers in the machine's byte
// order. A writer updates the second copy, then the first: two copies that differ are a header
// being written, which a reader (as SQLite's own) does not trust.
import { closeSync, openSync, readSync } from "node:fs";

/** WalIndexHdr.iVersion of the one format SQLite has written since 3.7.0 (WALINDEX_MAX_VERSION). */
const WAL_INDEX_VERSION = 3007000;
/** One copy of WalIndexHdr; the second follows the first. */
const WAL_INDEX_HDR_BYTES = 48;
/** The two header copies and WalCkptInfo: what is read. */
const WAL_INDEX_HEADER_BYTES = 136;
/** 32-bit word offsets: iVersion, isInit (a byte: word 3's first), mxFrame, and WalCkptInfo.nBackfill (byte 96). */
const WORD_VERSION = 0;
const BYTE_IS_INIT = 12;
const WORD_MX_FRAME = 4;
const WORD_N_BACKFILL = 24;
/** A header read while a writer updated it is read again, this many times in all. */
const WAL_INDEX_READ_ATTEMPTS = 3;

export interface WalIndexHeader {
  /** Frames in the WAL (its last valid frame). */
  mxFrame: number;
  /** Frames a checkpoint has copied back into the database (the WAL restarts once all are). */
  nBackfill: number;
}

export class WalIndexReader {
  private fd: number | null = null;
  private readonly buf = new ArrayBuffer(WAL_INDEX_HEADER_BYTES);
  private readonly bytes = new Uint8Array(this.buf);
  /** In the machine's byte order, as SQLite writes the index. */
  private readonly words = new Uint32Array(this.buf);

  constructor(private readonly dbPath: string) {}

  /**
   * The header now, or null when it cannot be read as the documented format says (no `-shm` yet, a
   * short file, another version, not initialised, or copies that kept differing): the caller then
   * does what it did without the header.
   */
  read(): WalIndexHeader | null {
    try {
      this.fd ??= openSync(`${this.dbPath}-shm`, "r");
      for (let attempt = 0; attempt < WAL_INDEX_READ_ATTEMPTS; attempt++) {
        if (readSync(this.fd, this.bytes, 0, WAL_INDEX_HEADER_BYTES, 0) !== WAL_INDEX_HEADER_BYTES) return null;
        if (this.words[WORD_VERSION] !== WAL_INDEX_VERSION || this.bytes[BYTE_IS_INIT] !== 1) return null;
        if (!this.copiesAgree()) continue;
        return { mxFrame: this.words[WORD_MX_FRAME] ?? 0, nBackfill: this.words[WORD_N_BACKFILL] ?? 0 };
      }
      return null;
    } catch {
      return null;
    }
  }

  private copiesAgree(): boolean {
    for (let i = 0; i < WAL_INDEX_HDR_BYTES; i++) if (this.bytes[i] !== this.bytes[WAL_INDEX_HDR_BYTES + i]) return false;
    return true;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
