/**
 * The upgrade pipe: connect to the pod, write the rewritten handshake, wait for the pod's status line, forward it, then
 * relay bytes both ways. Both sides are relay sockets (gateway/relay-socket.ts: libuv's TCP handle, no net.Socket). Hand-written rather than http-proxy(-3): measured
 * leaner per connection and per handshake (README, `npm run bench:gateway`).
 *
 * Memory: each proxied connection is two TCP handles, two relay sockets and one small `Link` object. Handlers are
 * shared functions that find their `Link` in the socket's `owner` field, so there are no per-connection closures, and
 * nothing keeps the request head after the upgrade.
 *
 * Ending: a FIN or a close on one side is passed on to the other with `end()`, after the bytes still
 * queued for it, never with `destroy()`. The pair then has CLOSE_GRACE_MS (one deadline list, one timer)
 * to finish before both sockets are destroyed.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { EdgeError } from '../src/errors.js';
import { runDrain, type DrainResult } from '../src/drain-schedule.js';
import { CLOSE_GRACE_MS, LOG_REPEAT_MS } from './constants.js';
import { DeadlineList, type DeadlineEntry } from './deadlines.js';
import { advance, atBoundary, CLOSE_GOING_AWAY, type FrameCursor } from './frames.js';
import type { GatewayMetrics } from './metrics.js';
import { Answer, endGracefully, rawErrorResponse } from './respond.js';
import { Resolved, type Upstream } from './resolvers/resolver.js';
import { logUpstreamFailure, UpstreamFailure } from './upstream-failure.js';
import { connectPod, READ_BUFFER, type RelaySocket, type RelaySocketHandlers } from './relay-socket.js';

const CRLFCRLF = Buffer.from('\r\n\r\n');
const HTTP_PREFIX = 'HTTP/1.';
const STATUS_SWITCHING = 101;
/** nginx's code for "client closed the request before the response". */
const STATUS_CLIENT_CLOSED = 499;
const CONTENT_LENGTH = /\r\ncontent-length:[ \t]*(\d+)/i;
const MAX_PORT = 65535;

/** Either side of a link: its `owner` is the Link. */
type LinkedSocket = RelaySocket & { owner: Link | undefined };

const enum Phase {
  /** Waiting for the pod's response head. */
  Handshake,
  /** The pod answered something other than 101: forward it and close. */
  Passthrough,
  /** 101 forwarded: relaying both ways (also while one side is being ended). */
  Relay,
  /** The client socket closed and was accounted for; the pod socket may still be flushing. */
  Done,
}

/** State of one proxied connection, shared by its two sockets. */
class Link implements FrameCursor, DeadlineEntry<Link> {
  phase = Phase.Handshake;
  /** Frame cursor of the pod → client stream (for a clean 1001 at shutdown). */
  left = 0;
  partial: Buffer | undefined = undefined;
  /** Pod → client bytes take the slow path: a 1001 waits for a frame boundary, or nothing more may be sent. */
  closing = false;
  /** A 1001 is due at the next frame boundary of the pod → client stream. */
  cutPending = false;
  /** Client → pod bytes are dropped (the 1001 was sent, or the pod socket is gone). */
  clientShut = false;
  /** Response head bytes received so far (handshake), or body bytes still expected (passthrough; -1 = until end). */
  head: Buffer | undefined = undefined;
  remaining = -1;
  /** Relay bytes of the client socket already added to the counters (the rest is added at scrape or close). */
  countedIn = 0;
  countedOut = 0;
  /** For the one log line of a 502/504; cleared when the relay starts. */
  podId: string | undefined;
  requestId: string | undefined;
  target: Upstream | undefined;
  /** Deadline (performance.now() ms) in one of the proxy's deadline lists (handshake or close grace). */
  deadline = 0;
  prev: Link | undefined = undefined;
  next: Link | undefined = undefined;
  list: DeadlineList<Link> | undefined = undefined;
  constructor(
    readonly proxy: UpgradeProxy,
    readonly client: LinkedSocket,
    readonly upstream: LinkedSocket,
    readonly t0: number,
    podId: string,
    requestId: string,
    target: Upstream,
  ) {
    this.podId = podId;
    this.requestId = requestId;
    this.target = target;
  }

  /** Still relaying normally (a paced shutdown skips links that are already ending). */
  get open(): boolean {
    return this.phase === Phase.Relay && !this.closing;
  }
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
  /** Set by closeAll: a handshake that completes from now on is closed with 1001 at once. */
  shuttingDown = false;
  private fdLogged = false;
  /** Handshake deadlines (connect + pod response head; passthrough bodies). */
  readonly handshakes: DeadlineList<Link>;
  /** Pairs being ended: destroyed if they have not closed within CLOSE_GRACE_MS. */
  readonly grace = new DeadlineList<Link>(CLOSE_GRACE_MS, destroyLink);

  constructor(readonly opts: ProxyOptions) {
    this.handshakes = new DeadlineList<Link>(opts.upstreamTimeoutMs, (link) => {
      if (link.phase === Phase.Handshake) failHandshake(link, Resolved.TIMEOUT, UpstreamFailure.TIMEOUT);
      else if (link.phase === Phase.Passthrough) endPassthrough(link);
    });
  }

  /** Proxied plus in-flight connections (each holds two descriptors). */
  size(): number {
    return this.active.size + this.pending;
  }

  /**
   * Connect to `upstream`, send `request` (the rewritten handshake head) and `head` (bytes the client
   * sent after its head), and take over `client` (paused). `t0` = performance.now() when the
   * upgrade was parsed. Never throws: an address that cannot be dialled answers 502 upstream_unreachable.
   */
  forward(client: RelaySocket, head: Buffer, upstream: Upstream, request: string, t0: number, podId: string, requestId: string): void {
    const { host, port } = upstream;
    // Nothing is resolved from a resolver's answer, and net.connect throws synchronously on a bad port.
    if (net.isIP(host) === 0 || !Number.isInteger(port) || port < 1 || port > MAX_PORT) {
      this.refuseBadAddress(client, podId, upstream, requestId, undefined);
      return;
    }
    let up: LinkedSocket;
    try {
      // Both sides' bytes land in one shared buffer and are copied out (pooled for small frames).
      up = connectPod(host, port, READ_BUFFER, POD_HANDLERS) as LinkedSocket;
    } catch (err) {
      this.refuseBadAddress(client, podId, upstream, requestId, err);
      return;
    }
    const link = new Link(this, client as LinkedSocket, up, t0, podId, requestId, upstream);
    client.owner = link;
    up.owner = link;
    this.pending++;
    client.handlers = CLIENT_HANDLERS;
    this.handshakes.arm(link);
    // Written before the connect completes: queued, and sent as soon as it does.
    up.write(request);
    if (head.length > 0) up.write(head);
    // Read the client from now on, so an abort during the pod's handshake is noticed at once (anything
    // it sends early simply follows its request head). The head reader paused it after the head.
    client.resume();
  }

  private refuseBadAddress(client: RelaySocket, podId: string, upstream: Upstream, requestId: string, err: unknown): void {
    this.opts.metrics.upgrade(Resolved.UNREACHABLE.status);
    logUpstreamFailure(this.opts.logger, Resolved.UNREACHABLE, { podId, upstream, requestId, reason: UpstreamFailure.BAD_ADDRESS, err });
    endGracefully(client, rawErrorResponse(Resolved.UNREACHABLE), CLOSE_GRACE_MS);
  }

  /**
   * Close every relayed connection with 1001 at a frame boundary, paced over `windowMs` with jitter (the
   * socket node's drain schedule); resolves when all are gone, or destroys what is left after the window
   * plus CLOSE_GRACE_MS.
   */
  async closeAll(windowMs: number): Promise<DrainResult> {
    this.shuttingDown = true;
    const result = await runDrain({
      targets: [...this.active],
      windowMs,
      timeoutMs: windowMs + CLOSE_GRACE_MS,
      notify: closeGoingAway,
      openConnections: () => this.size(),
    });
    for (const link of this.active) destroyLink(link);
    return result;
  }

  /** Add the bytes relayed so far by live connections to the counters (called at scrape time, not per chunk). */
  countLiveBytes(): void {
    for (const link of this.active) countBytes(link);
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

function onClientError(this: LinkedSocket): void {
  // 'close' follows every 'error'; teardown happens there.
}

function onUpstreamError(this: LinkedSocket, err: NodeJS.ErrnoException): void {
  const link = this.owner;
  if (!link || link.phase !== Phase.Handshake) return;
  if (err.code === 'EMFILE' || err.code === 'ENFILE') {
    link.proxy.fdExhausted(err);
    failHandshake(link, Answer.OVERLOADED, undefined);
  } else failHandshake(link, Resolved.UNREACHABLE, UpstreamFailure.CONNECT_ERROR, err);
}

function onDrain(this: LinkedSocket): void {
  const link = this.owner;
  if (!link) return;
  // This socket flushed its queue: let the other side read again.
  (this === link.client ? link.upstream : link.client).resume();
}

/** End `socket` after the bytes queued on it (no-op once it is ending or gone). */
function shut(socket: RelaySocket): void {
  if (!socket.destroyed && !socket.writableEnded) socket.end();
}

function onEnd(this: LinkedSocket): void {
  const link = this.owner;
  if (!link) return;
  if (this === link.client && link.phase === Phase.Handshake) {
    // A client's FIN before the 101 is an abort (it could never send a frame), as nginx's 499: without this the
    // half-open pair waited for the pod until GATEWAY_UPSTREAM_TIMEOUT_MS, three descriptors per aborted client.
    clientAborted(link);
    endGracefully(link.client, undefined, CLOSE_GRACE_MS);
    return;
  }
  if (this === link.upstream && link.phase === Phase.Handshake) {
    failHandshake(link, Resolved.UNREACHABLE, UpstreamFailure.CLOSED);
    return;
  }
  if (this === link.upstream && link.phase === Phase.Passthrough) {
    endPassthrough(link);
    return;
  }
  if (link.phase !== Phase.Relay) return;
  // A FIN is passed on after the bytes queued for the other side; both sockets are half-open
  // (allowHalfOpen), so the other direction keeps flowing until its own FIN or the grace deadline.
  shut(this === link.client ? link.upstream : link.client);
  if (link.list !== link.proxy.grace) link.proxy.grace.arm(link);
}

function onClientData(this: LinkedSocket, chunk: Buffer): void {
  const link = this.owner!;
  // After our 1001, with the pod gone, or after an answer that ends the client: nowhere to go (read and dropped,
  // so the client's FIN is seen).
  if (link.clientShut || link.phase === Phase.Done) return;
  if (!link.upstream.write(chunk)) this.pause();
}

function onUpstreamData(this: LinkedSocket, chunk: Buffer): void {
  const link = this.owner!;
  const client = link.client;
  switch (link.phase) {
    case Phase.Relay:
      if (link.closing) {
        if (!link.cutPending) return; // the client is closed or has its 1001: drop what the pod still sends
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
      if (!relayToClient(link, chunk)) this.pause();
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
    if (buf.length > proxy.opts.maxHeaderBytes) failHandshake(link, Resolved.UNREACHABLE, UpstreamFailure.RESPONSE_TOO_LARGE);
    else link.head = buf;
    return;
  }
  const bodyStart = end + CRLFCRLF.length;
  const status = buf.toString('latin1', 0, HTTP_PREFIX.length) === HTTP_PREFIX ? Number(buf.toString('latin1', 9, 12)) : NaN;
  link.head = undefined;
  if (!Number.isInteger(status)) {
    failHandshake(link, Resolved.UNREACHABLE, UpstreamFailure.INVALID_RESPONSE);
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
    return;
  }
  link.phase = Phase.Relay;
  link.podId = link.requestId = link.target = undefined;
  proxy.handshakes.disarm(link);
  proxy.active.add(link);
  proxy.opts.metrics.active(1);
  proxy.opts.metrics.handshake((performance.now() - link.t0) / 1000);
  // Frames the pod sent right behind its 101 (the welcome message) go out in the same write, straight to the
  // client's handle as relayed frames do (nothing has been written to the client before).
  if (buf.length > bodyStart) advance(link, buf.subarray(bodyStart), false);
  if (!relayToClient(link, buf)) up.pause();
  if (proxy.shuttingDown) closeGoingAway(link);
}

function endPassthrough(link: Link): void {
  link.phase = Phase.Done;
  link.proxy.handshakes.disarm(link);
  endGracefully(link.client, undefined, CLOSE_GRACE_MS);
  link.upstream.destroy();
}

function onUpstreamClose(this: LinkedSocket): void {
  const link = this.owner;
  if (!link) return;
  if (link.phase === Phase.Handshake) failHandshake(link, Resolved.UNREACHABLE, UpstreamFailure.CLOSED);
  else if (link.phase === Phase.Passthrough) endPassthrough(link);
  else if (link.phase === Phase.Relay) {
    // The pod is gone: the client gets what is queued for it, then a FIN; what it sends is dropped.
    link.clientShut = true;
    shut(link.client);
    link.client.resume();
    if (link.list !== link.proxy.grace) link.proxy.grace.arm(link);
  } else link.proxy.grace.disarm(link); // Done: both sockets closed
}

function onClientClose(this: LinkedSocket): void {
  const link = this.owner;
  if (!link) return;
  const proxy = link.proxy;
  const up = link.upstream;
  if (link.phase === Phase.Handshake) clientAborted(link);
  else if (link.phase === Phase.Relay) {
    proxy.active.delete(link);
    proxy.opts.metrics.active(-1);
    countBytes(link);
    // The pod gets what the client sent before leaving, then a FIN; what it still sends is dropped.
    link.closing = true;
    link.cutPending = false;
    if (up.closed) proxy.grace.disarm(link);
    else {
      shut(up);
      up.resume();
      if (link.list !== proxy.grace) proxy.grace.arm(link);
    }
  } else up.destroy();
  link.phase = Phase.Done;
  proxy.handshakes.disarm(link);
}

/** The client left before the pod's 101: count a 499 and drop the pod connection. */
function clientAborted(link: Link): void {
  const proxy = link.proxy;
  link.phase = Phase.Done;
  proxy.handshakes.disarm(link);
  proxy.pending--;
  proxy.opts.metrics.upgrade(STATUS_CLIENT_CLOSED);
  link.upstream.destroy();
}

/** Relay pod bytes to the client; false: the client is behind (pause the pod until the client's onDrain). */
function relayToClient(link: Link, chunk: Buffer): boolean {
  return link.client.write(chunk);
}

function countBytes(link: Link): void {
  const c = link.client;
  const read = c.bytesRead;
  const written = c.bytesWritten;
  link.proxy.opts.metrics.bytes(read - link.countedIn, written - link.countedOut);
  if (read > link.countedIn) link.countedIn = read;
  if (written > link.countedOut) link.countedOut = written;
}

/** Answer the client with `err` (if it still listens), log a 502/504 once, and tear both sockets down. */
function failHandshake(link: Link, err: EdgeError, reason: UpstreamFailure | undefined, cause?: unknown): void {
  if (link.phase !== Phase.Handshake) return;
  link.phase = Phase.Done;
  const proxy = link.proxy;
  proxy.handshakes.disarm(link);
  proxy.pending--;
  proxy.opts.metrics.upgrade(err.status);
  if (reason !== undefined) {
    logUpstreamFailure(proxy.opts.logger, err, { podId: link.podId!, upstream: link.target!, requestId: link.requestId!, reason, err: cause });
  }
  link.upstream.destroy();
  endGracefully(link.client, rawErrorResponse(err), CLOSE_GRACE_MS);
}

function closeGoingAway(link: Link): void {
  if (!link.open) return;
  link.closing = true;
  link.cutPending = true;
  if (atBoundary(link)) finishGoingAway(link);
  // Otherwise onUpstreamData cuts at the end of the frame in flight.
}

function finishGoingAway(link: Link): void {
  const { client, upstream } = link;
  link.cutPending = false;
  link.clientShut = true;
  // The client gets every byte queued for it, then the close frame and a FIN; its answer is read and dropped.
  if (!client.destroyed && !client.writableEnded) client.end(CLOSE_GOING_AWAY);
  client.resume();
  shut(upstream);
  upstream.resume();
  link.proxy.grace.arm(link);
}

function destroyLink(link: Link): void {
  link.client.destroy();
  link.upstream.destroy();
}

/** What the two sides of every link hear (gateway/relay-socket.ts calls them with the socket as `this`). */
const POD_HANDLERS: RelaySocketHandlers<LinkedSocket> = { onData: onUpstreamData, onEnd, onDrain, onError: onUpstreamError, onClose: onUpstreamClose };
const CLIENT_HANDLERS: RelaySocketHandlers<LinkedSocket> = { onData: onClientData, onEnd, onDrain, onError: onClientError, onClose: onClientClose };
