/**
 * The gateway's connection to a pod, on libuv's TCP handle (Node's `tcp_wrap` and `stream_wrap` bindings)
 * instead of a `net.Socket`. A `net.Socket` is a full Duplex stream (two stream states, an event emitter, async
 * hooks, a write queue in JavaScript), and creating one costs about 90 µs of CPU against about 15 µs for the
 * handle under it (loadtest/probe-handshake.ts; README "Proxy engine, chosen by measurement"). The proxy needs a small part of it:
 * connect, write with backpressure, read, half-close, close. This is that part, with `net.Socket`'s semantics
 * for each: writes before the connect completes are queued, `write()` returns false past a 16 KiB queue and
 * `onDrain` follows when it empties, a FIN from the pod is `onEnd` (half-open: writing goes on), an error is
 * `onError` then `onClose`, and the socket closes by itself once both directions have ended.
 *
 * Reads land in the caller's shared buffer (`useUserBuffer`) and are handed over as a copy of exactly the bytes
 * read. On a Node without these bindings (they are internal, present from Node 12 to 24), `connectPod` falls
 * back to `net.connect` behind the same interface.
 */
import net from 'node:net';
import { getSystemErrorName } from 'node:util';

/** What the proxy hears from a pod socket; `this` is the socket. */
export interface PodSocketHandlers<S> {
  onData(this: S, chunk: Buffer): void;
  onEnd(this: S): void;
  onDrain(this: S): void;
  onError(this: S, err: NodeJS.ErrnoException): void;
  onClose(this: S): void;
}

/** The part of a socket the proxy uses for its pod side. */
export interface PodSocket {
  /** destroy() was called, or the connection failed or closed. */
  readonly destroyed: boolean;
  /** The handle is closed ('close' has been delivered). */
  readonly closed: boolean;
  /** end() was called. */
  readonly writableEnded: boolean;
  /** Queue bytes for the pod; false when the queue is past the high-water mark (wait for onDrain). */
  write(data: Buffer | string): boolean;
  /** Send a FIN after the queued bytes. */
  end(): void;
  pause(): void;
  resume(): void;
  destroy(): void;
}

/** net.Socket's default writableHighWaterMark. */
const HIGH_WATER_MARK = 16 * 1024;
/** libuv's UV_EOF. */
const UV_EOF = -4095;

interface TcpHandle {
  onread: (this: TcpHandle, arrayBuffer: ArrayBuffer | undefined) => void;
  readonly writeQueueSize: number;
  connect(req: object, host: string, port: number): number;
  connect6(req: object, host: string, port: number): number;
  setNoDelay(on: boolean): number;
  readStart(): number;
  readStop(): number;
  shutdown(req: object): number;
  useUserBuffer(buf: Uint8Array): void;
  writeBuffer(req: object, buf: Buffer): number;
  writeLatin1String(req: object, s: string): number;
  close(cb: () => void): void;
  owner?: RawPodSocket;
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
    for (const m of ['connect', 'connect6', 'setNoDelay', 'readStart', 'readStop', 'shutdown', 'useUserBuffer', 'writeBuffer', 'writeLatin1String', 'close']) {
      if (typeof proto[m] !== 'function') return undefined;
    }
    return { TCP: tcp.TCP, TCPConnectWrap: tcp.TCPConnectWrap, SOCKET: tcp.constants.SOCKET, WriteWrap: stream.WriteWrap, ShutdownWrap: stream.ShutdownWrap, state: stream.streamBaseState, kReadBytesOrError: stream.kReadBytesOrError, kLastWriteWasAsync: stream.kLastWriteWasAsync };
  } catch {
    return undefined;
  }
})();

/**
 * Write `data` (a Buffer, or a string sent as latin1) straight to a stream handle: the pod socket's own, or a
 * net.Socket's `_handle` outside its Writable. libuv keeps a handle's writes in one FIFO queue, so a direct write
 * stays in order with the Writable's own writes and its shutdown, as long as the Writable holds nothing not yet
 * handed to the handle (the caller checks `writableLength === 0`). Returns 0 when written at once, 1 when libuv
 * queued it (`onComplete` runs with `ctx` when it is done; the data is kept alive until then), or a negative libuv
 * error. NO_BINDINGS when this Node lacks the bindings.
 */
export function writeToHandle<C>(handle: unknown, data: Buffer | string, onComplete: (ctx: C, status: number) => void, ctx: C): number {
  const b = BINDINGS;
  if (!b) return NO_BINDINGS;
  const h = handle as TcpHandle;
  const req = new b.WriteWrap() as InstanceType<Bindings['WriteWrap']> & { ctx?: C; done?: (ctx: C, status: number) => void };
  req.handle = h;
  const err = typeof data === 'string' ? h.writeLatin1String(req, data) : h.writeBuffer(req, data);
  if (err !== 0) return err;
  if (!b.state[b.kLastWriteWasAsync]) return 0;
  // libuv holds a pointer into the data until the write completes: keep it alive with the request.
  req.buffer = data;
  req.ctx = ctx;
  req.done = onComplete;
  req.oncomplete = onDirectWriteComplete;
  return 1;
}

/** A copy of the `nread` bytes a read left at the start of a shared read buffer (pooled when small). */
export function copyRead(buf: Uint8Array, nread: number): Buffer {
  const chunk = Buffer.allocUnsafe(nread);
  chunk.set(buf.subarray(0, nread));
  return chunk;
}

/** writeToHandle's "no bindings" answer (not a libuv error number). */
export const NO_BINDINGS = -1000;

function onDirectWriteComplete(this: { buffer?: unknown; ctx?: unknown; done?: (ctx: unknown, status: number) => void }, status: number): void {
  const done = this.done!;
  const ctx = this.ctx;
  this.buffer = this.ctx = this.done = undefined;
  done(ctx, status);
}

/** Bytes queued in a stream handle's libuv write queue (0 for anything else). */
export function handleQueueSize(handle: unknown): number {
  return (handle as TcpHandle | undefined)?.writeQueueSize ?? 0;
}

/** Which implementation `connectPod` uses on this Node (for the start-up log and the tests). */
export const POD_SOCKET_KIND: 'handle' | 'net' = BINDINGS ? 'handle' : 'net';

function uvError(status: number, syscall: string, host: string, port: number): NodeJS.ErrnoException {
  let code: string;
  try {
    code = getSystemErrorName(status);
  } catch {
    code = `UV${status}`;
  }
  return Object.assign(new Error(`${syscall} ${code} ${host}:${port}`), { code, errno: status, syscall, address: host, port });
}

function afterPodWrite(sock: RawPodSocket, status: number): void {
  sock.afterWrite(status);
}

function onShutdownComplete(this: { handle?: TcpHandle }, status: number): void {
  this.handle?.owner?.afterShutdown(status);
}

function onHandleRead(this: TcpHandle): void {
  this.owner?.onRead(BINDINGS!.state[BINDINGS!.kReadBytesOrError]!);
}

/** A pod connection on the raw TCP handle. */
class RawPodSocket implements PodSocket {
  destroyed = false;
  closed = false;
  writableEnded = false;
  private connecting = true;
  private paused = false;
  private readEnded = false;
  private shutdownDone = false;
  private needDrain = false;
  /** Writes made before the connect completed, in order. */
  private queued: Array<Buffer | string> | undefined = [];
  private queuedBytes = 0;
  private readonly handle: TcpHandle;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly readBuffer: Uint8Array,
    private readonly on: PodSocketHandlers<PodSocket>,
  ) {
    const b = BINDINGS!;
    const h = new b.TCP(b.SOCKET);
    this.handle = h;
    h.owner = this;
    h.onread = onHandleRead;
    h.useUserBuffer(readBuffer);
    const req = new b.TCPConnectWrap();
    req.oncomplete = (status: number) => this.afterConnect(status);
    const err = net.isIPv6(host) ? h.connect6(req, host, port) : h.connect(req, host, port);
    // As net.Socket: a connect that fails at once (EMFILE, a bad address) is reported asynchronously.
    if (err !== 0) process.nextTick(() => this.close(uvError(err, 'connect', host, port)));
  }

  write(data: Buffer | string): boolean {
    if (this.destroyed || this.writableEnded) return false;
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

  end(): void {
    if (this.writableEnded || this.destroyed) return;
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

  /** @internal */
  onRead(nread: number): void {
    if (this.destroyed) return;
    if (nread > 0) {
      this.on.onData.call(this, copyRead(this.readBuffer, nread));
      return;
    }
    if (nread === 0) return;
    if (nread === UV_EOF) {
      this.readEnded = true;
      this.handle.readStop();
      this.on.onEnd.call(this);
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
      this.on.onDrain.call(this);
    }
  }

  /** @internal */
  afterShutdown(status: number): void {
    if (this.destroyed) return;
    // A failed shutdown (the pod reset the connection meanwhile) is a close, as net.Socket's.
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
      this.on.onDrain.call(this);
    }
    if (this.destroyed) return;
    if (!this.paused) this.handle.readStart();
    if (this.writableEnded) this.shutdown();
  }

  /** Hand one write to libuv; false (and the socket failed) when it refused it. */
  private dispatch(data: Buffer | string): boolean {
    const err = writeToHandle(this.handle, data, afterPodWrite, this);
    if (err < 0) {
      this.close(uvError(err, 'write', this.host, this.port));
      return false;
    }
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
    const h = this.handle;
    if (!this.connecting && !this.readEnded) h.readStop();
    // As net.Socket: the error on the next tick (never inside the caller's write()), then the close.
    if (err) process.nextTick(() => this.on.onError.call(this, err));
    h.close(() => {
      this.closed = true;
      h.owner = undefined;
      this.on.onClose.call(this);
    });
  }
}

/** The fallback: net.Socket behind the same interface (a Node without the bindings). */
function connectWithNet(host: string, port: number, readBuffer: Uint8Array, on: PodSocketHandlers<PodSocket>): PodSocket {
  const onread = { buffer: readBuffer, callback: (nread: number, buf: Uint8Array) => {
    on.onData.call(socket, copyRead(buf, nread));
    return true;
  } };
  const s = net.connect({ host, port, noDelay: true, allowHalfOpen: true, onread });
  const socket: PodSocket = {
    get destroyed() { return s.destroyed; },
    get closed() { return s.closed; },
    get writableEnded() { return s.writableEnded; },
    write: (data) => (typeof data === 'string' ? s.write(data, 'latin1') : s.write(data)),
    end: () => void s.end(),
    pause: () => void s.pause(),
    resume: () => void s.resume(),
    destroy: () => void s.destroy(),
  };
  s.on('end', () => on.onEnd.call(socket));
  s.on('drain', () => on.onDrain.call(socket));
  s.on('error', (err: NodeJS.ErrnoException) => on.onError.call(socket, err));
  s.on('close', () => on.onClose.call(socket));
  return socket;
}

/**
 * Connect to a pod at `host` (an IP address) and `port`. Never throws for a refused or failed connect: that is
 * `onError` then `onClose`, asynchronously. Reads go through `readBuffer` (one thread: never two reads at once).
 */
export function connectPod(host: string, port: number, readBuffer: Uint8Array, on: PodSocketHandlers<PodSocket>): PodSocket {
  return BINDINGS ? new RawPodSocket(host, port, readBuffer, on) : connectWithNet(host, port, readBuffer, on);
}
