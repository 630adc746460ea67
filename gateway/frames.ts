/**
 * Just enough WebSocket framing for the relay to know where frame boundaries are in the pod → client
 * stream, so a shutdown can insert its 1001 close frame between frames and never inside one. Payloads
 * are never read or copied; a frame header split across reads is the only thing buffered (≤ 14 bytes).
 */
import { CloseCode } from '../src/constants.js';

/** Largest frame header: 2 + 8 (64-bit length) + 4 (mask). */
export const MAX_FRAME_HEADER = 14;

/** Cursor state of one direction of a relayed stream. */
export interface FrameCursor {
  /** Bytes of the current frame still to arrive before the next header. */
  left: number;
  /** A frame header split across reads, or undefined. */
  partial: Buffer | undefined;
}

/** Header + payload length of the frame starting at `pos`, or -1 when the header is incomplete. */
export function frameSize(buf: Buffer, pos: number): number {
  const avail = buf.length - pos;
  if (avail < 2) return -1;
  const b1 = buf[pos + 1]!;
  let len = b1 & 0x7f;
  let hdr = 2;
  if (len === 126) {
    if (avail < 4) return -1;
    len = buf.readUInt16BE(pos + 2);
    hdr = 4;
  } else if (len === 127) {
    if (avail < 10) return -1;
    len = buf.readUInt32BE(pos + 2) * 0x1_0000_0000 + buf.readUInt32BE(pos + 6);
    hdr = 10;
  }
  if (b1 & 0x80) hdr += 4;
  return hdr + len;
}

/**
 * Advance `c` over `chunk`. With `stopAtBoundary`, returns the offset of the first frame boundary in
 * `chunk` (0..length; the cursor is then left as is), otherwise -1.
 */
export function advance(c: FrameCursor, chunk: Buffer, stopAtBoundary: boolean): number {
  const len = chunk.length;
  let pos: number;
  if (c.partial !== undefined) {
    const had = c.partial.length;
    const joined = Buffer.concat([c.partial, chunk.subarray(0, MAX_FRAME_HEADER - had)]);
    const size = frameSize(joined, 0);
    if (size < 0) {
      c.partial = joined;
      return -1;
    }
    c.partial = undefined;
    pos = size - had;
  } else {
    pos = c.left;
  }
  while (pos < len) {
    if (stopAtBoundary) return pos;
    const size = frameSize(chunk, pos);
    if (size < 0) {
      c.partial = Buffer.from(chunk.subarray(pos));
      c.left = 0;
      return -1;
    }
    pos += size;
  }
  if (stopAtBoundary && pos === len) return len;
  c.left = pos - len;
  return -1;
}

/** True when the cursor sits between frames. */
export function atBoundary(c: FrameCursor): boolean {
  return c.left === 0 && c.partial === undefined;
}

/** An unmasked server close frame: 1001 Going Away, reason "gateway shutting down". */
export const CLOSE_GOING_AWAY: Buffer = (() => {
  const reason = Buffer.from('gateway shutting down');
  const b = Buffer.alloc(4 + reason.length);
  b[0] = 0x88;
  b[1] = 2 + reason.length;
  b.writeUInt16BE(CloseCode.GOING_AWAY, 2);
  reason.copy(b, 4);
  return b;
})();
