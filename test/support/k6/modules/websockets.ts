/**
 * `k6/websockets` over `ws`, following k6's behaviour (internal/js/modules/k6/websockets): a refused handshake
 * is an `error` event "websocket: bad handshake" (the HTTP status is not given to the script) then a `close`
 * event without a code; a server close with a code other than 1000/1001 fires `error` first, then `close`
 * with `code` and `reason`; messages arriving while not OPEN are dropped; an open or connecting socket keeps
 * the VU's iteration alive. Members that are not implemented throw.
 */
import { WebSocket as WsClient, type RawData } from 'ws';
import { vu, type LoopTask } from '../state.js';

type EventName = 'open' | 'message' | 'error' | 'close';
type Listener = (event: Record<string, unknown>) => unknown;

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;
/** @types/k6 declares these constants, but k6's WebSocket has none at run time: reading one must fail here too. */
const NO_CONSTANTS = new Set(['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']);
const noConstant = (name: string): never => {
  throw new Error(`k6 test runtime: k6's WebSocket has no ${name} constant (k6 defines none; compare readyState with 0-3)`);
};
const HANDSHAKE_TIMEOUT_MS = 60_000;
const MAX_REASON_BYTES = 123;
/** Close codes after which k6 does not fire `error` (gorilla/websocket's expected closes). */
const EXPECTED_CLOSES = new Set([1000, 1001]);
const CLOSE_ABNORMAL = 1006;
/** gorilla/websocket's CloseError texts, which k6 passes to the `error` event. */
const CLOSE_TEXT: Record<number, string> = {
  1000: '(normal)',
  1001: '(going away)',
  1002: '(protocol error)',
  1003: '(unsupported data)',
  1005: '(no status)',
  1006: '(abnormal closure)',
  1007: '(invalid payload data)',
  1008: '(policy violation)',
  1009: '(message too big)',
  1010: '(mandatory extension missing)',
  1011: '(internal server error)',
  1015: '(TLS handshake error)',
};
const KNOWN = new Set(['url', 'readyState', 'bufferedAmount', 'binaryType', 'send', 'close', 'addEventListener', 'onopen', 'onmessage', 'onerror', 'onclose', 'constructor']);

function closeErrorText(code: number, reason: string): string {
  const text = CLOSE_TEXT[code];
  return `websocket: close ${code}${text ? ` ${text}` : ''}${reason ? `: ${reason}` : ''}`;
}

/** k6's WebSocket. */
class K6WebSocket {
  readonly url: string;
  private state = CONNECTING;
  private kind: 'blob' | 'arraybuffer' = 'blob';
  private readonly handlers: Record<EventName, Listener | null> = { open: null, message: null, error: null, close: null };
  private readonly listeners: Record<EventName, Listener[]> = { open: [], message: [], error: [], close: [] };
  private readonly client: WsClient;
  private readonly task: LoopTask;
  private readonly tags: Record<string, string>;
  private pendingClose: { code: number; reason: string } | undefined;
  private socketError: string | undefined;
  private openedAt = 0;

  constructor(url: string, protocols?: string | string[] | null, params?: { headers?: Record<string, string>; tags?: Record<string, string> } | null) {
    vu.assertRunning();
    if (vu.inInit) throw new Error('WebSocket: connecting in the init context is not supported');
    const u = new URL(String(url));
    if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new Error(`WebSocket requires url with scheme ws or wss, but got "${u.protocol.slice(0, -1)}"`);
    if (u.hash) throw new Error(`WebSocket requires no url fragment, but got "${u.hash.slice(1)}"`);
    this.url = u.toString();
    this.tags = { url: this.url, name: this.url, ...params?.tags };
    const started = performance.now();
    let status: number | undefined;
    const client = new WsClient(this.url, protocols ?? undefined, { headers: params?.headers, handshakeTimeout: HANDSHAKE_TIMEOUT_MS, perMessageDeflate: false });
    this.client = client;
    this.task = { cancel: () => this.cancel() };
    vu.addTask(this.task);
    const connected = () => {
      const tags = { ...this.tags, ...(status !== undefined ? { status: String(status) } : {}) };
      vu.emit('ws_connecting', performance.now() - started, tags);
      vu.emit('ws_sessions', 1, tags);
    };
    client.on('upgrade', (res) => (status = res.statusCode));
    client.on('unexpected-response', (req, res) => {
      status = res.statusCode;
      res.resume();
      req.destroy();
      if (this.state === CLOSED) return;
      connected();
      this.finish('websocket: bad handshake', undefined, '');
    });
    client.on('open', () => {
      if (this.state === CLOSED) return;
      connected();
      this.openedAt = performance.now();
      if (this.pendingClose) {
        this.state = CLOSING;
        client.close(this.pendingClose.code, this.pendingClose.reason);
        return;
      }
      this.state = OPEN;
      this.dispatch('open', {});
    });
    client.on('error', (err) => {
      if (this.state === CLOSED) return;
      if (this.state === CONNECTING) {
        connected();
        this.finish(`dial: ${err.message}`, undefined, '');
      } else {
        this.socketError = err.message;
      }
    });
    client.on('message', (data: RawData, isBinary: boolean) => {
      if (this.state !== OPEN) return;
      vu.emit('ws_msgs_received', 1, this.tags);
      this.dispatch('message', { data: isBinary ? this.binary(data) : data.toString(), origin: this.url });
    });
    client.on('close', (code: number, reasonBuf: Buffer) => {
      if (this.state === CLOSED) return;
      const reason = reasonBuf.toString();
      vu.emit('ws_session_duration', performance.now() - this.openedAt, this.tags);
      if (code === CLOSE_ABNORMAL && this.socketError) this.finish(this.socketError, undefined, '');
      else this.finish(EXPECTED_CLOSES.has(code) ? undefined : closeErrorText(code, reason), code, reason);
    });
    // Unknown members fail loudly rather than read as undefined.
    return new Proxy(this, {
      get(target, prop, receiver) {
        if (typeof prop === 'string' && NO_CONSTANTS.has(prop)) noConstant(prop);
        if (typeof prop === 'string' && !KNOWN.has(prop) && !(prop in target)) throw new Error(`k6 test runtime: WebSocket.${prop} is not implemented`);
        return Reflect.get(target, prop, receiver);
      },
    });
  }

  get readyState(): number {
    return this.state;
  }

  get bufferedAmount(): number {
    return this.client.bufferedAmount;
  }

  get binaryType(): 'blob' | 'arraybuffer' {
    return this.kind;
  }

  set binaryType(v: 'blob' | 'arraybuffer') {
    if (v !== 'blob' && v !== 'arraybuffer') throw new Error(`unknown binaryType ${String(v)}, the supported ones are "blob" and "arraybuffer"`);
    this.kind = v;
  }

  /** Send a text or binary frame; throws InvalidStateError unless OPEN. */
  send(data: string | ArrayBuffer | ArrayBufferView): void {
    if (this.state !== OPEN) throw new Error('InvalidStateError');
    this.client.send(typeof data === 'string' ? data : data instanceof ArrayBuffer ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    vu.emit('ws_msgs_sent', 1, this.tags);
  }

  /** Start the closing handshake (code 1000 or 3000–4999, as k6 allows). */
  close(code?: number, reason = ''): void {
    if (this.state === CLOSED || this.state === CLOSING) return;
    if (code !== undefined && code !== 1000 && !(code >= 3000 && code <= 4999)) {
      throw new Error(`InvalidAccessError: Failed to execute 'close' on 'WebSocket': The close code must be either 1000, or between 3000 and 4999. ${code} is neither`);
    }
    if (Buffer.byteLength(reason) > MAX_REASON_BYTES) throw new Error(`SyntaxError: Failed to execute 'close' on 'WebSocket': The message must not be greater than ${MAX_REASON_BYTES} bytes`);
    const c = code ?? 1000;
    if (this.state === CONNECTING) {
      this.pendingClose = { code: c, reason };
      return;
    }
    this.state = CLOSING;
    this.client.close(c, reason);
  }

  addEventListener(event: string, listener: Listener): void {
    if (typeof listener !== 'function') throw new Error(`handler for event type "${event}" isn't a callable function`);
    if (!(event in this.listeners)) throw new Error(`k6 test runtime: WebSocket event "${event}" is not implemented`);
    this.listeners[event as EventName].push(listener);
  }

  get onopen(): Listener | null {
    return this.handlers.open;
  }
  set onopen(fn: Listener | null) {
    this.handlers.open = fn;
  }
  get onmessage(): Listener | null {
    return this.handlers.message;
  }
  set onmessage(fn: Listener | null) {
    this.handlers.message = fn;
  }
  get onerror(): Listener | null {
    return this.handlers.error;
  }
  set onerror(fn: Listener | null) {
    this.handlers.error = fn;
  }
  get onclose(): Listener | null {
    return this.handlers.close;
  }
  set onclose(fn: Listener | null) {
    this.handlers.close = fn;
  }

  private binary(data: RawData): ArrayBuffer | Blob {
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
    return this.kind === 'arraybuffer' ? ab : new Blob([ab]);
  }

  /** CLOSED: `error` (when there is one) then `close`, then the socket no longer keeps the loop alive. */
  private finish(error: string | undefined, code: number | undefined, reason: string): void {
    this.state = CLOSED;
    if (error !== undefined) this.dispatch('error', { error });
    this.dispatch('close', { ...(code !== undefined ? { code } : {}), reason });
    vu.removeTask(this.task);
  }

  private dispatch(name: EventName, fields: Record<string, unknown>): void {
    const event = { type: name, timestamp: Date.now(), target: this, ...fields };
    const on = this.handlers[name];
    for (const fn of on ? [on, ...this.listeners[name]] : [...this.listeners[name]]) vu.callback(() => fn(event));
  }

  /** Interrupt: close without telling the script (k6 stops forwarding events once the VU is done). */
  private cancel(): void {
    const wasOpen = this.state === OPEN;
    this.state = CLOSED;
    if (wasOpen) this.client.close(1000);
    else this.client.terminate();
  }
}

/** The export: the class, whose static constants (absent in k6) throw when read. */
export const WebSocket = new Proxy(K6WebSocket, {
  get(target, prop, receiver) {
    if (typeof prop === 'string' && NO_CONSTANTS.has(prop)) noConstant(prop);
    return Reflect.get(target, prop, receiver);
  },
});
