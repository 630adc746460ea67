/** One WebSocket connection as handlers see it: safe to use after close (sends become no-ops). */
import { CloseCode } from '../src/constants.js';
import type { ErrorName } from '../src/errors.js';
import { SendStatus } from './constants.js';
import * as protocol from './protocol.js';
import type { WebSocket } from './uws.js';

/** What every session of one node shares (one object per node, not per connection). */
export interface SessionHost {
  readonly podId: string;
  /** A send was dropped at the backpressure limit. */
  dropped(session: Session): void;
}

/** uWS user data: the only per-connection state the node keeps besides the uWS socket itself. */
export interface UserData {
  session: Session;
}

const RESERVED_CLOSE_CODES = new Set([1004, 1005, 1006, 1015]);
const MIN_CLOSE_CODE = 1000;
const MAX_CLOSE_CODE = 4999;
/** A close frame's payload is at most 125 bytes, two of them the code. */
const MAX_CLOSE_REASON_BYTES = 123;

/** What the upgrade left on a session: who connected, with which key, and what `onUpgrade` attached. */
export interface SessionOrigin {
  /** The client's address (X-Forwarded-For only from SOCKET_TRUSTED_PROXIES, else the TCP peer). */
  clientAddress: string;
  /** The valid `?key=` of the connect URL, else undefined. */
  key: string | undefined;
  /** What `onUpgrade` returned as `{ data }` (undefined without it). */
  data: unknown;
}

const NO_ORIGIN: SessionOrigin = { clientAddress: '', key: undefined, data: undefined };

/** A connection: its session id, where it came from, and the uWS socket while it is open. */
export class Session {
  /** Set on open, cleared on close. */
  ws: WebSocket<UserData> | undefined = undefined;
  /** The client's address, as `onUpgrade` saw it. */
  readonly clientAddress: string;
  /** The valid placement key of the connect URL (`?key=`), else undefined. */
  readonly key: string | undefined;
  /** The data `onUpgrade` attached (`return { data }`), else undefined. */
  readonly data: unknown;

  constructor(
    readonly host: SessionHost,
    readonly sessionId: string,
    origin: SessionOrigin = NO_ORIGIN,
  ) {
    this.clientAddress = origin.clientAddress;
    this.key = origin.key;
    this.data = origin.data;
  }

  /** This node's pod id. */
  get podId(): string {
    return this.host.podId;
  }

  /** True from open until close. */
  get open(): boolean {
    return this.ws !== undefined;
  }

  /** Send a frame (corked). False when closed or dropped at the backpressure limit (the connection is then closed). */
  send(data: string | ArrayBuffer | Uint8Array, isBinary = false): boolean {
    const ws = this.ws;
    if (!ws) return false;
    let status: number = SendStatus.SUCCESS;
    ws.cork(() => {
      status = ws.send(data, isBinary);
    });
    if (status === SendStatus.DROPPED) {
      this.host.dropped(this);
      return false;
    }
    return true;
  }

  /** Send a JSON text frame. */
  sendJson(value: unknown): boolean {
    return this.send(JSON.stringify(value));
  }

  /** Send `{"type":"error","error":<code>,"message"}`. */
  sendError(name: ErrorName, message?: string): boolean {
    return this.send(protocol.error(name, message));
  }

  /** Close with a WebSocket close code (invalid or reserved codes become 1000). */
  close(code: number = CloseCode.NORMAL, reason?: string): void {
    const ws = this.ws;
    if (!ws) return;
    const valid = Number.isInteger(code) && code >= MIN_CLOSE_CODE && code <= MAX_CLOSE_CODE && !RESERVED_CLOSE_CODES.has(code);
    let short = reason?.slice(0, MAX_CLOSE_REASON_BYTES);
    while (short && Buffer.byteLength(short) > MAX_CLOSE_REASON_BYTES) short = short.slice(0, -1); // whole characters only
    ws.cork(() => ws.end(valid ? code : CloseCode.NORMAL, short));
  }
}
