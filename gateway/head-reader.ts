/**
 * Reads the first request head of every client connection off the raw socket: bounded by
 * GATEWAY_MAX_HEADER_BYTES (431) and GATEWAY_HANDSHAKE_TIMEOUT_MS from accept (408, slowloris; one timer for
 * all connections), judged by gateway/request-head.ts. A `GET` upgrade goes to `onUpgrade` with the socket
 * paused; anything else is replayed, byte for byte, into Node's `http.Server` on a `net.Socket` made from the same
 * connection (the relay socket's `toNetSocket`).
 */
import type http from 'node:http';
import type { EdgeError } from '../src/errors.js';
import { DeadlineList, type DeadlineEntry } from './deadlines.js';
import { Answer } from './respond.js';
import { examineHead, type RequestHead } from './request-head.js';
import type { RelaySocket, RelaySocketHandlers } from './relay-socket.js';

/** A client socket while its first head is read: its `owner` is the Pending (undefined once the head is done). */
type ReadingSocket = RelaySocket & { owner: Pending | undefined };

/** What the reader hands on. */
export interface HeadReaderOptions {
  maxHeaderBytes: number;
  timeoutMs: number;
  /** Node's server for everything but `GET` upgrades (it never listens itself). */
  http: http.Server;
  /** A `GET` upgrade: the socket is paused; `early` holds the bytes the client sent after its head. */
  onUpgrade(head: RequestHead, socket: RelaySocket, early: Buffer): void;
  /** The head is refused (malformed, too large, too slow): answer `err` and end the socket. */
  onRefuse(socket: RelaySocket, err: EdgeError): void;
}

/** One connection whose head is not complete yet. */
class Pending implements DeadlineEntry<Pending> {
  buf: Buffer | undefined = undefined;
  deadline = 0;
  prev: Pending | undefined = undefined;
  next: Pending | undefined = undefined;
  list: DeadlineList<Pending> | undefined = undefined;
  constructor(
    readonly reader: HeadReader,
    readonly socket: ReadingSocket,
  ) {}
}

/** The first-head reader of one listening port. */
export class HeadReader {
  private readonly pending: DeadlineList<Pending>;

  constructor(readonly opts: HeadReaderOptions) {
    this.pending = new DeadlineList<Pending>(opts.timeoutMs, expire);
  }

  /** Start reading a freshly accepted socket (made with HEAD_HANDLERS). */
  accept(socket: RelaySocket): void {
    const p = new Pending(this, socket as ReadingSocket);
    socket.owner = p;
    this.pending.arm(p);
  }

  /** Destroy every connection still sending its head (shutdown). */
  destroyPending(): void {
    this.pending.forEach((p) => p.socket.destroy());
  }

  /** @internal The head is complete or refused: stop reading it. */
  done(p: Pending): void {
    this.pending.disarm(p);
    p.socket.owner = undefined;
  }
}

function expire(p: Pending): void {
  const socket = p.socket;
  if (socket.owner !== p) return;
  socket.owner = undefined;
  if (!socket.destroyed) p.reader.opts.onRefuse(socket, Answer.REQUEST_TIMEOUT);
}

/** The client ended its side mid-head (the socket is half-open, as the proxy needs): 400 as Node's parser answers, or just close. */
function onHeadEnd(this: ReadingSocket): void {
  const p = this.owner;
  if (!p) return;
  p.reader.done(p);
  if (p.buf === undefined) this.end();
  else p.reader.opts.onRefuse(this, Answer.MALFORMED_HEAD);
}

function onHeadData(this: ReadingSocket, chunk: Buffer): void {
  const p = this.owner;
  if (!p) return;
  const { reader } = p;
  const scanned = p.buf === undefined ? 0 : p.buf.length;
  const buf = p.buf === undefined ? chunk : Buffer.concat([p.buf, chunk]);
  const step = examineHead(buf, scanned, reader.opts.maxHeaderBytes);
  switch (step.kind) {
    case 'more':
      p.buf = buf;
      return;
    case 'refuse':
      reader.done(p);
      reader.opts.onRefuse(this, step.refusal.error);
      return;
    case 'upgrade':
      reader.done(p);
      // Nothing more is read until the proxy takes the socket (or a refusal drains it).
      this.pause();
      reader.opts.onUpgrade(step.head, this, buf.subarray(step.end));
      return;
    case 'http': {
      reader.done(p);
      // Node's parser reads the head again from the start, and everything after it.
      const socket = this.toNetSocket();
      socket.unshift(buf);
      reader.opts.http.emit('connection', socket);
      return;
    }
  }
}

/** The socket closed (or failed) mid-head: forget it. */
function onHeadClose(this: ReadingSocket): void {
  const p = this.owner;
  if (p) p.reader.done(p);
}

function noop(): void {}

/** What a client socket hears until its first head is read (gateway/server.ts accepts every socket with them). */
export const HEAD_HANDLERS: RelaySocketHandlers<ReadingSocket> = { onData: onHeadData, onEnd: onHeadEnd, onDrain: noop, onError: noop, onClose: onHeadClose };
