/**
 * The upgrade pipe: `net.connect` to the pod, write the rewritten handshake, wait for the pod's status
 * line, forward it, then relay bytes both ways. Hand-written rather than http-proxy(-3): measured
 * leaner per connection and per handshake (README, `npm run bench:gateway`).
 *
 * Memory: each proxied connection is two sockets plus one small `Link` object. Listeners are shared
 * functions that find their `Link` through one symbol property, so there are no per-connection
 * closures, and nothing keeps the IncomingMessage or its headers after the upgrade. Sockets are never
 * given listeners that are later removed (removal would turn their listener maps into slow dictionaries).
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { EdgeError } from '../src/errors.js';
import { CLOSE_GRACE_MS, LOG_REPEAT_MS } from './constants.js';
import { advance, atBoundary, CLOSE_GOING_AWAY, type FrameCursor } from './frames.js';
import type { GatewayMetrics } from './metrics.js';
import { Answer, endGracefully, rawErrorResponse } from './respond.js';
import { Resolved, type Upstream } from './resolvers/resolver.js';

const LINK = Symbol('rtc-edge.link');
const CRLFCRLF = Buffer.from('\r\n\r\n');
const HTTP_PREFIX = 'HTTP/1.';
const STATUS_SWITCHING = 101;
/** nginx's code for "client closed the request before the response". */
const STATUS_CLIENT_CLOSED = 499;
const CONTENT_LENGTH = /\r\ncontent-length:[ \t]*(\d+)/i;
/** Reads from every pod socket land here and are copied out at once (one thread: never two reads at a time). */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

type LinkedSocket = net.Socket & { [LINK]?: Link };

const enum Phase {
  /** Waiting for the pod's response head. */
  Handshake,
  /** The pod answered something other than 101: forward it and close. */
  Passthrough,
  /** 101 forwarded: relaying both ways. */
  Relay,
  /** Both sockets are being torn down; accounting done. */
  Done,
}

/** State of one proxied connection, shared by its two sockets. */
class Link implements FrameCursor {
  phase = Phase.Handshake;
  /** Frame cursor of the pod → client stream (for a clean 1001 at shutdown). */
  left = 0;
  partial: Buffer | undefined = undefined;
  /** Close the client at the next frame boundary. */
  closing = false;
  /** The 1001 close frame has been written. */
  closeSent = false;
  /** Response head bytes received so far (handshake), or body bytes still expected (passthrough; -1 = until end). */
  head: Buffer | undefined = undefined;
  remaining = -1;
  /** Handshake deadline (performance.now() ms) and its place in the proxy's deadline list. */
  deadline = 0;
  prev: Link | undefined = undefined;
  next: Link | undefined = undefined;
  armed = false;
  constructor(
    readonly proxy: UpgradeProxy,
    readonly client: LinkedSocket,
    readonly upstream: LinkedSocket,
    readonly t0: number,
  ) {}
}

/** Options of the upgrade pipe. */
export interface ProxyOptions {
  upstreamTimeoutMs: number;
  /** Largest pod response head accepted. */
  maxHeaderBytes: number;
  metrics: GatewayMetrics;
  logger: Logger;
}

/** Owns every proxied connection of one gateway. */
export class UpgradeProxy {
  /** Links currently relaying (101 forwarded). */
  readonly active = new Set<Link>();
  /** Handshakes in flight. */
  pending = 0;
  private fdLogged = false;
  private idleWaiters: (() => void)[] = [];
  // Handshake deadlines: one timer for all, over a list in deadline order (the timeout is constant),
  // instead of a Timeout object per socket (Node keeps that one alive for the socket's whole life).
  private first: Link | undefined;
  private last: Link | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly opts: ProxyOptions) {}

  /** Proxied plus in-flight connections (each holds two descriptors). */
  size(): number {
    return this.active.size + this.pending;
  }

  /**
   * Call first on every socket handed over by an 'upgrade' event: Node removed its own error and
   * timeout listeners, and an unhandled socket error would crash the process.
   */
  static adopt(client: net.Socket): void {
    client.on('error', onError);
    client.on('timeout', onIdleTimeout);
  }

  /**
   * Connect to `upstream`, send `request` (the rewritten handshake head) and `head` (bytes the client
   * sent after its head), and take over `client` (already `adopt`ed). `t0` = performance.now() when the upgrade was parsed.
   */
  forward(client: net.Socket, head: Buffer, upstream: Upstream, request: string, t0: number): void {
    // `onread`: the pod's bytes land in one shared buffer and are copied out (pooled for small frames),
    // skipping the Readable machinery and the 64 KiB allocation Node makes per read.
    const up = net.connect({ host: upstream.host, port: upstream.port, noDelay: true, allowHalfOpen: true, onread: { buffer: READ_BUFFER, callback: onUpstreamRead } }) as LinkedSocket;
    const link = new Link(this, client as LinkedSocket, up, t0);
    (client as LinkedSocket)[LINK] = link;
    up[LINK] = link;
    this.pending++;
    client.setNoDelay(true);
    client.on('close', onClientClose);
    client.on('end', onEnd);
    client.on('drain', onDrain);
    up.on('error', onUpstreamError);
    up.on('close', onUpstreamClose);
    up.on('end', onEnd);
    up.on('drain', onDrain);
    this.arm(link);
    // Written before 'connect': net buffers it and sends head + early data in one writev.
    up.write(request, 'latin1');
    if (head.length > 0) up.write(head);
    // Read the client from now on, so an abort during the pod's handshake is noticed at once (anything
    // it sends early simply follows its request head).
    client.on('data', onClientData);
  }

  /** Close every relayed connection with 1001 at a frame boundary; resolves when all are gone or after the grace. */
  async closeAll(): Promise<void> {
    for (const link of this.active) closeGoingAway(link);
    if (this.active.size === 0 && this.pending === 0) return;
    await this.whenIdle(CLOSE_GRACE_MS);
    for (const link of this.active) destroyLink(link);
  }

  /** Resolves when nothing is proxied or pending, or after `ms`. */
  whenIdle(ms: number): Promise<void> {
    if (this.active.size === 0 && this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      const waiter = () => done();
      this.idleWaiters.push(waiter);
      const self = this;
      function done() {
        clearTimeout(t);
        self.idleWaiters = self.idleWaiters.filter((w) => w !== waiter);
        resolve();
      }
    });
  }

  /** @internal Start the handshake deadline of `link`. */
  arm(link: Link): void {
    link.deadline = performance.now() + this.opts.upstreamTimeoutMs;
    link.armed = true;
    link.prev = this.last;
    if (this.last) this.last.next = link;
    else this.first = link;
    this.last = link;
    if (!this.timer) this.schedule(this.opts.upstreamTimeoutMs);
  }

  /** @internal The handshake of `link` ended (relaying or torn down). */
  disarm(link: Link): void {
    if (!link.armed) return;
    link.armed = false;
    if (link.prev) link.prev.next = link.next;
    else this.first = link.next;
    if (link.next) link.next.prev = link.prev;
    else this.last = link.prev;
    link.prev = link.next = undefined;
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(() => this.expire(), Math.max(1, Math.ceil(ms)));
    this.timer.unref();
  }

  private expire(): void {
    this.timer = undefined;
    const now = performance.now();
    while (this.first && this.first.deadline <= now) {
      const link = this.first;
      if (link.phase === Phase.Handshake) failHandshake(link, Resolved.TIMEOUT);
      else if (link.phase === Phase.Passthrough) endPassthrough(link);
      this.disarm(link);
    }
    if (this.first) this.schedule(this.first.deadline - now);
  }

  /** @internal */
  settled(): void {
    if (this.active.size === 0 && this.pending === 0 && this.idleWaiters.length > 0) {
      for (const w of this.idleWaiters.slice()) w();
    }
  }

  /** @internal */
  fdExhausted(err: NodeJS.ErrnoException): void {
    this.opts.metrics.fdExhausted('connect');
    if (!this.fdLogged) {
      this.fdLogged = true;
      this.opts.logger.error({ err }, 'out of file descriptors connecting to a pod: answering 503 until descriptors free up');
      setTimeout(() => (this.fdLogged = false), LOG_REPEAT_MS).unref();
    }
  }
}

// ---- shared listeners (`this` is the socket) ----

function onError(this: LinkedSocket): void {
  // 'close' follows every 'error'; teardown happens there.
}

function onUpstreamError(this: LinkedSocket, err: NodeJS.ErrnoException): void {
  const link = this[LINK];
  if (!link || link.phase !== Phase.Handshake) return;
  if (err.code === 'EMFILE' || err.code === 'ENFILE') {
    link.proxy.fdExhausted(err);
    failHandshake(link, Answer.OVERLOADED);
  } else failHandshake(link, Resolved.UNREACHABLE);
}

function onIdleTimeout(this: LinkedSocket): void {
  this.destroy();
}

function onDrain(this: LinkedSocket): void {
  const link = this[LINK];
  if (!link) return;
  // This socket flushed its queue: let the other side read again.
  (this === link.client ? link.upstream : link.client).resume();
}

function onEnd(this: LinkedSocket): void {
  const link = this[LINK];
  if (!link) return;
  if (this === link.upstream && link.phase === Phase.Handshake) {
    failHandshake(link, Resolved.UNREACHABLE);
    return;
  }
  if (this === link.upstream && link.phase === Phase.Passthrough) {
    endPassthrough(link);
    return;
  }
  if (link.phase === Phase.Done) return;
  // A FIN from either side ends the pair (as nginx does for upgraded connections): WebSocket has no
  // use for TCP half-close, and this costs no timers. Bytes still queued are flushed first.
  const other = this === link.client ? link.upstream : link.client;
  if (other.writableLength > 0) other.destroySoon();
  else other.destroy();
  if (this.writableLength > 0) this.destroySoon();
  else this.destroy();
}

function onClientData(this: LinkedSocket, chunk: Buffer): void {
  const link = this[LINK]!;
  if (link.closeSent) return; // the client's answer to our 1001 has nowhere to go
  if (!link.upstream.write(chunk)) this.pause();
}

function onUpstreamRead(this: LinkedSocket, nread: number, buf: Uint8Array): boolean {
  const chunk = Buffer.allocUnsafe(nread);
  chunk.set(buf.subarray(0, nread));
  onUpstreamData.call(this, chunk);
  return true;
}

function onUpstreamData(this: LinkedSocket, chunk: Buffer): void {
  const link = this[LINK]!;
  const client = link.client;
  switch (link.phase) {
    case Phase.Relay:
      if (link.closing) {
        const cut = advance(link, chunk, true);
        if (cut >= 0) {
          if (cut > 0) client.write(chunk.subarray(0, cut));
          finishGoingAway(link);
          return;
        }
      } else if (link.left >= chunk.length && link.partial === undefined) {
        link.left -= chunk.length; // inside a large frame: nothing to parse
      } else {
        advance(link, chunk, false);
      }
      if (!client.write(chunk)) this.pause();
      return;
    case Phase.Handshake:
      onHandshakeData(link, chunk);
      return;
    case Phase.Passthrough:
      client.write(chunk);
      if (link.remaining >= 0 && (link.remaining -= chunk.length) <= 0) endPassthrough(link);
      return;
    default:
      return;
  }
}

function onHandshakeData(link: Link, chunk: Buffer): void {
  const buf = link.head === undefined ? chunk : Buffer.concat([link.head, chunk]);
  const end = buf.indexOf(CRLFCRLF, link.head === undefined ? 0 : Math.max(0, link.head.length - 3));
  const proxy = link.proxy;
  if (end === -1) {
    if (buf.length > proxy.opts.maxHeaderBytes) failHandshake(link, Resolved.UNREACHABLE);
    else link.head = buf;
    return;
  }
  const bodyStart = end + CRLFCRLF.length;
  const status = buf.toString('latin1', 0, HTTP_PREFIX.length) === HTTP_PREFIX ? Number(buf.toString('latin1', 9, 12)) : NaN;
  link.head = undefined;
  if (!Number.isInteger(status)) {
    failHandshake(link, Resolved.UNREACHABLE);
    return;
  }
  const client = link.client;
  const up = link.upstream;
  proxy.pending--;
  proxy.opts.metrics.upgrade(status);
  if (status !== STATUS_SWITCHING) {
    // The pod refused the upgrade (e.g. 503 node_draining): forward its answer verbatim, then close.
    link.phase = Phase.Passthrough;
    const m = CONTENT_LENGTH.exec(buf.toString('latin1', 0, end + 2));
    const bodyBytes = buf.length - bodyStart;
    client.write(buf);
    if (m) {
      link.remaining = Number(m[1]) - bodyBytes;
      if (link.remaining <= 0) endPassthrough(link);
    }
    proxy.settled();
    return;
  }
  link.phase = Phase.Relay;
  proxy.disarm(link);
  proxy.active.add(link);
  proxy.opts.metrics.active(1);
  proxy.opts.metrics.handshake((performance.now() - link.t0) / 1000);
  // Frames the pod sent right behind its 101 (the welcome message) go out in the same write.
  if (buf.length > bodyStart) advance(link, buf.subarray(bodyStart), false);
  if (!client.write(buf)) up.pause();
}

function endPassthrough(link: Link): void {
  link.phase = Phase.Done;
  link.proxy.disarm(link);
  endGracefully(link.client, undefined, CLOSE_GRACE_MS);
  link.upstream.destroy();
}

function onUpstreamClose(this: LinkedSocket): void {
  const link = this[LINK];
  if (!link) return;
  if (link.phase === Phase.Handshake) failHandshake(link, Resolved.UNREACHABLE);
  else if (link.phase === Phase.Passthrough) endPassthrough(link);
  else if (link.phase === Phase.Relay && !link.closeSent) link.client.destroy();
}

function onClientClose(this: LinkedSocket): void {
  const link = this[LINK];
  if (!link) return;
  const proxy = link.proxy;
  if (link.phase === Phase.Handshake) {
    proxy.pending--;
    proxy.opts.metrics.upgrade(STATUS_CLIENT_CLOSED);
  } else if (link.phase === Phase.Relay) {
    proxy.active.delete(link);
    proxy.opts.metrics.active(-1);
    proxy.opts.metrics.bytes(this.bytesRead, this.bytesWritten);
  }
  link.phase = Phase.Done;
  proxy.disarm(link);
  link.upstream.destroy();
  proxy.settled();
}

/** Answer the client with `err` (if it still listens) and tear both sockets down. */
function failHandshake(link: Link, err: EdgeError): void {
  if (link.phase !== Phase.Handshake) return;
  link.phase = Phase.Done;
  const proxy = link.proxy;
  proxy.disarm(link);
  proxy.pending--;
  proxy.opts.metrics.upgrade(err.status);
  link.upstream.destroy();
  endGracefully(link.client, rawErrorResponse(err), CLOSE_GRACE_MS);
  proxy.settled();
}

function closeGoingAway(link: Link): void {
  if (link.phase !== Phase.Relay || link.closing) return;
  link.closing = true;
  if (atBoundary(link)) finishGoingAway(link);
  // Otherwise onUpstreamData cuts at the end of the frame in flight.
}

function finishGoingAway(link: Link): void {
  const { client, upstream } = link;
  link.closeSent = true;
  endGracefully(client, CLOSE_GOING_AWAY, CLOSE_GRACE_MS);
  upstream.destroy();
}

function destroyLink(link: Link): void {
  link.client.destroy();
  link.upstream.destroy();
}
