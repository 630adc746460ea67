/**
 * Both sockets of a proxied connection, on libuv's TCP handle (Node's `tcp_wrap` and `stream_wrap` bindings)
 * instead of a `net.Socket`: the pod side, which the gateway connects (`connectPod`), and the client side, which
 * it accepts (`acceptHandle`, from the listening handle's `onconnection`, see gateway/server.ts). A `net.Socket` is
 * a full Duplex stream (two stream states, an event emitter, async hooks, a write queue in JavaScript), and
 * creating one costs about 90 µs of CPU against about 15 µs for the handle under it (loadtest/probe-handshake.ts;
 * README "Proxy engine, chosen by measurement"). The proxy needs a small part of it: connect, write with
 * backpressure, read, half-close, close. This is that part, with `net.Socket`'s semantics for each: writes before
 * the connect completes are queued, `write()` returns false past a 16 KiB queue and `onDrain` follows when it
 * empties, a FIN from the peer is `onEnd` (half-open: writing goes on), an error is `onError` then `onClose`, and
 * the socket closes by itself once both directions have ended.
 *
 * Every read lands in one shared buffer (`useUserBuffer`; one thread, so never two reads at once) and is handed over
 * as a copy of exactly the bytes read: no read buffer per socket, no 64 KiB allocation per read. A client connection
 * whose first request is not an upgrade goes to Node's `http.Server` on a `net.Socket` made from the same handle
 * (`toNetSocket`), whose reads then go through the same buffer into its Readable. On a Node without these bindings (they are internal, present from Node 12 to
 * 24), `connectPod` falls back to `net.connect` and the server to `net.Socket`s, behind the same interface
 * (`wrapNetSocket`, also used for the sockets Node's `http.Server` hands over with an 'upgrade').
 */
import net from 'node:net';
import { getSystemErrorName } from 'node:util';

/** What the owner of a relay socket hears; `this` is the socket. */
export interface RelaySocketHandlers<S> {
  onData(this: S, chunk: Buffer): void;
  onEnd(this: S): void;
  onDrain(this: S): void;
  onError(this: S, err: NodeJS.ErrnoException): void;
  onClose(this: S): void;
}

/** The part of a socket the proxy uses, for either side. */
export interface RelaySocket {
  /** destroy() was called, or the connection failed or closed (or went to a net.Socket). */
  readonly destroyed: boolean;
  /** The handle is closed ('close' has been delivered). */
  readonly closed: boolean;
  /** end() was called. */
  readonly writableEnded: boolean;
  /** Bytes read so far, and bytes handed to write() so far (as net.Socket's counters). */
  readonly bytesRead: number;
  readonly bytesWritten: number;
  /** The peer's IP address (undefined once closed, or when unknown). */
  readonly remoteAddress: string | undefined;
  /** Who hears this socket from now on (the head reader, then the proxy). */
  handlers: RelaySocketHandlers<never>;
  /**
   * The state of whoever hears it (the head reader's pending head, then the proxy's link), for the shared handlers.
   * A field every socket is made with, so all sockets keep one hidden class (a property added later would fork it).
   */
  owner: unknown;
  /** Runs once when the connection closes, also after toNetSocket (then when that socket closes). */
  onClosed: (() => void) | undefined;
  /** Queue bytes for the peer; false when the queue is past the high-water mark (wait for onDrain). */
  write(data: Buffer | string): boolean;
  /** Send `last` (if any), then a FIN after the queued bytes. */
  end(last?: Buffer | string): void;
  pause(): void;
  resume(): void;
  destroy(): void;
  /** Destroy the socket if it has not closed within `ms` (the answer-then-close paths). */
  closeWithin(ms: number): void;
  /**
   * Hand the connection to a `net.Socket` (for Node's http.Server): nothing more is heard here, and `onClosed`
   * moves to the new socket. Only with nothing written.
   */
  toNetSocket(): net.Socket;
}

/** net.Socket's default writableHighWaterMark. */
const HIGH_WATER_MARK = 16 * 1024;
/** libuv's UV_EOF. */
const UV_EOF = -4095;

interface TcpHandle {
  onread: (this: TcpHandle) => void;
  readonly writeQueueSize: number;
  connect(req: object, host: string, port: number): number;
  connect6(req: object, host: string, port: number): number;
  getpeername(out: { address?: string }): number;
  setNoDelay(on: boolean): number;
  readStart(): number;
  readStop(): number;
  shutdown(req: object): number;
  useUserBuffer(buf: Uint8Array): void;
  writeBuffer(req: object, buf: Buffer): number;
  writeLatin1String(req: object, s: string): number;
  close(cb: () => void): void;
  owner?: RawSocket | undefined;
}

interface Bindings {
  TCP: new (type: number) => TcpHandle;
  TCPConnectWrap: new () => { oncomplete?: (status: number) => void };
  SOCKET: number;
  WriteWrap: new () => { handle?: TcpHandle; oncomplete?: (status: number) => void; buffer?: Buffer | string; async?: boolean };
  ShutdownWrap: new () => { handle?: TcpHandle; oncomplete?: (status: number) => void };
  state: Int32Array;
  kReadBytesOrError: number;
  kLastWriteWasAsync: number;
}

/** The bindings, checked for every member used; undefined when this Node lacks any of them. */
const BINDINGS: Bindings | undefined = (() => {
  try {
    const binding = (process as unknown as { binding(name: string): Record<string, unknown> }).binding;
    const tcp = binding('tcp_wrap') as { TCP?: Bindings['TCP']; TCPConnectWrap?: Bindings['TCPConnectWrap']; constants?: { SOCKET?: number } };
    const stream = binding('stream_wrap') as { WriteWrap?: Bindings['WriteWrap']; ShutdownWrap?: Bindings['ShutdownWrap']; streamBaseState?: Int32Array; kReadBytesOrError?: number; kLastWriteWasAsync?: number };
    if (!tcp.TCP || !tcp.TCPConnectWrap || typeof tcp.constants?.SOCKET !== 'number' || !stream.WriteWrap || !stream.ShutdownWrap || !(stream.streamBaseState instanceof Int32Array)) return undefined;
    if (typeof stream.kReadBytesOrError !== 'number' || typeof stream.kLastWriteWasAsync !== 'number') return undefined;
    const proto = tcp.TCP.prototype as unknown as Record<string, unknown>;
    for (const m of ['connect', 'connect6', 'getpeername', 'setNoDelay', 'readStart', 'readStop', 'shutdown', 'useUserBuffer', 'writeBuffer', 'writeLatin1String', 'close']) {
      if (typeof proto[m] !== 'function') return undefined;
    }
    return {
      TCP: tcp.TCP,
      TCPConnectWrap: tcp.TCPConnectWrap,
      SOCKET: tcp.constants.SOCKET,
      WriteWrap: stream.WriteWrap,
      ShutdownWrap: stream.ShutdownWrap,
      state: stream.streamBaseState,
      kReadBytesOrError: stream.kReadBytesOrError,
      kLastWriteWasAsync: stream.kLastWriteWasAsync,
    };
  } catch {
    return undefined;
  }
})();

/** Which implementation this Node uses for both sides (for the start-up log and the tests). */
export const RELAY_SOCKET_KIND: 'handle' | 'net' = BINDINGS ? 'handle' : 'net';

/** Where every relay socket of this process reads (pod sockets may be given another, e.g. in tests). */
export const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** A copy of the `nread` bytes a read left at the start of a shared read buffer (pooled when small). */
export function copyRead(buf: Uint8Array, nread: number): Buffer {
  const chunk = Buffer.allocUnsafe(nread);
  chunk.set(buf.subarray(0, nread));
  return chunk;
}

function uvError(status: number, syscall: string, host: string | undefined, port: number | undefined): NodeJS.ErrnoException {
  let code: string;
  try {
    code = getSystemErrorName(status);
  } catch {
    code = `UV${status}`;
  }
  const where = host === undefined ? '' : ` ${host}:${port}`;
  return Object.assign(new Error(`${syscall} ${code}${where}`), { code, errno: status, syscall, ...(host === undefined ? {} : { address: host, port }) });
}

function onWriteComplete(this: { handle?: TcpHandle; buffer?: unknown }, status: number): void {
  this.buffer = undefined;
  this.handle?.owner?.afterWrite(status);
}

function onShutdownComplete(this: { handle?: TcpHandle }, status: number): void {
  this.handle?.owner?.afterShutdown(status);
}

function onHandleRead(this: TcpHandle): void {
  this.owner?.onRead(BINDINGS!.state[BINDINGS!.kReadBytesOrError]!);
}

const NO_HANDLERS: RelaySocketHandlers<RelaySocket> = { onData() {}, onEnd() {}, onDrain() {}, onError() {}, onClose() {} };

/** A connection on the raw TCP handle: one the gateway connected (pod side) or accepted (client side). */
class RawSocket implements RelaySocket {
  destroyed = false;
  closed = false;
  writableEnded = false;
  bytesRead = 0;
  bytesWritten = 0;
  handlers: RelaySocketHandlers<never>;
  owner: unknown = undefined;
  onClosed: (() => void) | undefined = undefined;
  private connecting: boolean;
  private paused = false;
  private readEnded = false;
  private shutdownDone = false;
  private needDrain = false;
  /** Writes made before the connect completed, in order. */
  private queued: Array<Buffer | string> | undefined;
  private queuedBytes = 0;
  private grace: NodeJS.Timeout | undefined = undefined;
  private peer: string | undefined = undefined;

  constructor(
    private readonly handle: TcpHandle,
    handlers: RelaySocketHandlers<never>,
    private readonly readBuffer: Uint8Array,
    /** The pod's address for a socket being connected; undefined for an accepted one. */
    private readonly host?: string,
    private readonly port?: number,
  ) {
    this.handlers = handlers;
    this.connecting = host !== undefined;
    this.queued = this.connecting ? [] : undefined;
    handle.owner = this;
    handle.onread = onHandleRead;
    handle.useUserBuffer(readBuffer);
    if (host !== undefined) {
      const req = new BINDINGS!.TCPConnectWrap();
      req.oncomplete = (status: number) => this.afterConnect(status);
      const err = net.isIPv6(host) ? handle.connect6(req, host, port!) : handle.connect(req, host, port!);
      // As net.Socket: a connect that fails at once (EMFILE, a bad address) is reported asynchronously.
      if (err !== 0) process.nextTick(() => this.close(uvError(err, 'connect', host, port)));
    } else {
      handle.setNoDelay(true);
      handle.readStart();
    }
  }

  get remoteAddress(): string | undefined {
    if (this.peer === undefined && !this.destroyed) {
      const out: { address?: string } = {};
      if (this.handle.getpeername(out) === 0) this.peer = out.address;
    }
    return this.peer;
  }

  write(data: Buffer | string): boolean {
    if (this.destroyed || this.writableEnded) return false;
    this.bytesWritten += data.length;
    if (this.queued) {
      this.queued.push(data);
      this.queuedBytes += data.length;
      if (this.queuedBytes >= HIGH_WATER_MARK) this.needDrain = true;
      return !this.needDrain;
    }
    if (!this.dispatch(data)) return false;
    if (this.handle.writeQueueSize >= HIGH_WATER_MARK) {
      this.needDrain = true;
      return false;
    }
    return true;
  }

  end(last?: Buffer | string): void {
    if (this.writableEnded || this.destroyed) return;
    if (last !== undefined) this.write(last);
    if (this.destroyed) return;
    this.writableEnded = true;
    if (!this.connecting) this.shutdown();
  }

  pause(): void {
    if (this.paused) return;
    this.paused = true;
    if (!this.connecting && !this.destroyed && !this.readEnded) this.handle.readStop();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (!this.connecting && !this.destroyed && !this.readEnded) this.handle.readStart();
  }

  destroy(): void {
    this.close(undefined);
  }

  closeWithin(ms: number): void {
    if (this.destroyed || this.grace) return;
    this.grace = setTimeout(() => this.destroy(), ms);
    this.grace.unref();
  }

  toNetSocket(): net.Socket {
    const h = this.handle;
    // Nothing more comes here: the handle (and the bytes the kernel still holds for it) is the new socket's.
    h.readStop();
    h.onread = noop; // must stay a function (net.Socket sets its own next)
    h.owner = undefined;
    this.destroyed = true;
    this.handlers = NO_HANDLERS as RelaySocketHandlers<never>;
    // The handle reads into the shared buffer (net.Socket's documented `onread` mode); each read is copied into the
    // Readable, so Node's http.Server sees an ordinary socket (its parser reads the handle itself while it serves it).
    const onread = { buffer: this.readBuffer, callback: (nread: number, buf: Uint8Array) => socket.push(copyRead(buf, nread)) };
    const socket: net.Socket = new net.Socket({ handle: h, allowHalfOpen: true, readable: true, writable: true, onread } as net.SocketConstructorOpts);
    const closed = this.onClosed;
    this.onClosed = undefined;
    if (closed) socket.once('close', closed);
    return socket;
  }

  /** @internal */
  onRead(nread: number): void {
    if (this.destroyed) return;
    if (nread > 0) {
      this.bytesRead += nread;
      this.handlers.onData.call(this as never, copyRead(this.readBuffer, nread));
      return;
    }
    if (nread === 0) return;
    if (nread === UV_EOF) {
      this.readEnded = true;
      this.handle.readStop();
      this.handlers.onEnd.call(this as never);
      if (this.shutdownDone) this.destroy();
      return;
    }
    this.close(uvError(nread, 'read', this.host, this.port));
  }

  /** @internal */
  afterWrite(status: number): void {
    if (this.destroyed) return;
    if (status < 0) {
      this.close(uvError(status, 'write', this.host, this.port));
      return;
    }
    if (this.needDrain && this.handle.writeQueueSize === 0) {
      this.needDrain = false;
      this.handlers.onDrain.call(this as never);
    }
  }

  /** @internal */
  afterShutdown(status: number): void {
    if (this.destroyed) return;
    // A failed shutdown (the peer reset the connection meanwhile) is a close, as net.Socket's.
    this.shutdownDone = true;
    if (status < 0 || this.readEnded) this.destroy();
  }

  private afterConnect(status: number): void {
    if (this.destroyed) return;
    if (status < 0) {
      this.close(uvError(status, 'connect', this.host, this.port));
      return;
    }
    this.connecting = false;
    this.handle.setNoDelay(true);
    const queued = this.queued!;
    this.queued = undefined;
    this.queuedBytes = 0;
    for (const data of queued) if (!this.dispatch(data)) return;
    if (this.needDrain && this.handle.writeQueueSize < HIGH_WATER_MARK) {
      this.needDrain = false;
      this.handlers.onDrain.call(this as never);
    }
    if (this.destroyed) return;
    if (!this.paused) this.handle.readStart();
    if (this.writableEnded) this.shutdown();
  }

  /**
   * Hand one write to libuv (a Buffer, or a string sent as latin1); false (and the socket failed) when it refused
   * it. libuv holds a pointer into the data until the write completes, so a queued write keeps it alive.
   */
  private dispatch(data: Buffer | string): boolean {
    const b = BINDINGS!;
    const req = new b.WriteWrap();
    req.handle = this.handle;
    req.oncomplete = onWriteComplete;
    const err = typeof data === 'string' ? this.handle.writeLatin1String(req, data) : this.handle.writeBuffer(req, data);
    if (err !== 0) {
      this.close(uvError(err, 'write', this.host, this.port));
      return false;
    }
    if (b.state[b.kLastWriteWasAsync]) req.buffer = data;
    return true;
  }

  private shutdown(): void {
    const req = new BINDINGS!.ShutdownWrap();
    req.handle = this.handle;
    req.oncomplete = onShutdownComplete;
    const err = this.handle.shutdown(req);
    if (err !== 0) this.destroy();
  }

  private close(err: NodeJS.ErrnoException | undefined): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.queued = undefined;
    if (this.grace) clearTimeout(this.grace);
    const h = this.handle;
    if (!this.connecting && !this.readEnded) h.readStop();
    // As net.Socket: the error on the next tick (never inside the caller's write()), then the close.
    if (err) process.nextTick(() => this.handlers.onError.call(this as never, err));
    h.close(() => {
      this.closed = true;
      h.owner = undefined;
      const closed = this.onClosed;
      this.onClosed = undefined;
      closed?.();
      this.handlers.onClose.call(this as never);
    });
  }
}

/** A net.Socket behind the relay interface: the fallback, and the sockets Node's http.Server hands over. */
class NetRelaySocket implements RelaySocket {
  handlers: RelaySocketHandlers<never>;
  owner: unknown = undefined;
  private readonly listeners: ReadonlyArray<readonly [string, (arg: never) => void]>;

  constructor(
    readonly socket: net.Socket,
    handlers: RelaySocketHandlers<never>,
  ) {
    this.handlers = handlers;
    this.listeners = [
      ['data', (chunk: Buffer) => this.handlers.onData.call(this as never, chunk)],
      ['end', () => this.handlers.onEnd.call(this as never)],
      ['drain', () => this.handlers.onDrain.call(this as never)],
      ['error', (err: NodeJS.ErrnoException) => this.handlers.onError.call(this as never, err)],
      ['close', () => this.handlers.onClose.call(this as never)],
      ['timeout', () => socket.destroy()],
    ];
    for (const [event, fn] of this.listeners) socket.on(event, fn as (arg: unknown) => void);
  }

  get destroyed(): boolean {
    return this.socket.destroyed;
  }
  get closed(): boolean {
    return this.socket.closed;
  }
  get writableEnded(): boolean {
    return this.socket.writableEnded;
  }
  get bytesRead(): number {
    return this.socket.bytesRead;
  }
  get bytesWritten(): number {
    return this.socket.bytesWritten;
  }
  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }
  get onClosed(): (() => void) | undefined {
    return undefined;
  }
  set onClosed(fn: (() => void) | undefined) {
    if (fn) this.socket.once('close', fn);
  }

  write(data: Buffer | string): boolean {
    return typeof data === 'string' ? this.socket.write(data, 'latin1') : this.socket.write(data);
  }
  end(last?: Buffer | string): void {
    if (last === undefined) this.socket.end();
    else if (typeof last === 'string') this.socket.end(last, 'latin1');
    else this.socket.end(last);
  }
  pause(): void {
    this.socket.pause();
  }
  resume(): void {
    this.socket.resume();
  }
  destroy(): void {
    this.socket.destroy();
  }
  closeWithin(ms: number): void {
    this.socket.setTimeout(ms);
  }
  toNetSocket(): net.Socket {
    // Still flowing, as http.Server expects a fresh connection: its own 'data' listener takes over in the same tick.
    for (const [event, fn] of this.listeners) this.socket.removeListener(event, fn as (arg: unknown) => void);
    // Its error listener goes with ours: an error before http.Server adds its own must not crash the process.
    this.socket.on('error', noop);
    return this.socket;
  }
}

function noop(): void {}

/** A net.Socket (one Node's http.Server handed over, or an accepted one on a Node without the bindings) as a relay socket. */
export function wrapNetSocket(socket: net.Socket, handlers: RelaySocketHandlers<never>): RelaySocket {
  return new NetRelaySocket(socket, handlers);
}

/**
 * Connect to a pod at `host` (an IP address) and `port`. Never throws for a refused or failed connect: that is
 * `onError` then `onClose`, asynchronously. Reads go through `readBuffer` (one thread: never two reads at once).
 */
export function connectPod(host: string, port: number, readBuffer: Uint8Array, on: RelaySocketHandlers<never>): RelaySocket {
  if (BINDINGS) return new RawSocket(new BINDINGS.TCP(BINDINGS.SOCKET), on, readBuffer, host, port);
  const onread = {
    buffer: readBuffer,
    callback: (nread: number, buf: Uint8Array) => {
      relay.handlers.onData.call(relay as never, copyRead(buf, nread));
      return true;
    },
  };
  const relay = wrapNetSocket(net.connect({ host, port, noDelay: true, allowHalfOpen: true, onread }), on);
  return relay;
}

/**
 * Take over the listening handle of `server` (after each 'listening'): accepted connections come to `onHandle` as
 * relay sockets instead of becoming net.Sockets, and an accept error is the server's 'error' (syscall `accept`), as
 * Node's own. False on a Node without the bindings (the server's 'connection' event goes on as usual). Works for a
 * cluster worker too: the shared handle, and the primary's round robin, both deliver through `onconnection`.
 */
export function takeAccepts(server: net.Server, onConnection: (accept: () => RelaySocket, drop: () => void) => void, handlers: RelaySocketHandlers<never>): boolean {
  if (!BINDINGS) return false;
  const take = (): void => {
    const listening = (server as unknown as { _handle?: { onconnection?: unknown } })._handle;
    if (!listening) return;
    listening.onconnection = (status: number, handle: TcpHandle | undefined) => {
      if (status !== 0 || !handle) {
        server.emit('error', uvError(status, 'accept', undefined, undefined));
        return;
      }
      onConnection(
        () => new RawSocket(handle, handlers, READ_BUFFER),
        () => handle.close(noop),
      );
    };
  };
  server.on('listening', take);
  return true;
}
