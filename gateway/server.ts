/**
 * The gateway's listening side: a `net.Server` whose listening handle is taken over (gateway/relay-socket.ts
 * `takeAccepts`), so an accepted connection is a bare TCP handle, not a `net.Socket`, read by gateway/head-reader.ts.
 * A `GET` upgrade is parsed by the gateway's strict parser and proxied without any `http.Server` or `net.Socket`
 * object; every other first request (`/ws/assign`, the probes, the admin routes) is replayed into a `http.Server`
 * that never listens itself, on a `net.Socket` made from the connection, and served from then on (keep-alive
 * included; an upgrade later on such a connection comes back through its 'upgrade' event). Descriptor exhaustion
 * never crashes it.
 */
import http from 'node:http';
import net, { type Socket } from 'node:net';
import { takeAccepts, wrapNetSocket, type RelaySocket } from './relay-socket.js';
import { performance } from 'node:perf_hooks';
import { handleRequest } from './api.js';
import { CLOSE_GRACE_MS, CONNECTIONS_CHECK_INTERVAL_MS, KEEP_ALIVE_TIMEOUT_MS, LOG_REPEAT_MS, REFUSAL_RESERVE, SOCKET_HEADROOM } from './constants.js';
import type { GatewayContext } from './context.js';
import { buildUpstreamRequest, headerLines, requestIdOf, type ClientRequest } from './handshake.js';
import { HEAD_HANDLERS, HeadReader } from './head-reader.js';
import { headVerdict, type RequestHead } from './request-head.js';
import { Answer, rawErrorResponse, writeRawError } from './respond.js';
import { isUpstream, Resolved, type Resolution } from './resolvers/resolver.js';
import { routeOn, type Surface } from './surface.js';
import { logUpstreamFailure, UpstreamFailure } from './upstream-failure.js';
import { POD_MAX_HEADER_LINES } from '../src/constants.js';
import type { EdgeError } from '../src/errors.js';

const WEBSOCKET = 'websocket';
const CLIENT_ERROR = 'client_error';
const HTTP_1_1 = '1.1';

/** A listening gateway port: the raw server, plus the connection controls of the `http.Server` behind it. */
export type GatewayServer = net.Server & {
  /** Close keep-alive connections of plain requests that are idle, and every connection still sending its first head. */
  closeIdleConnections(): void;
  /** Destroy every connection of plain requests and every connection still sending its first head. */
  closeAllConnections(): void;
  /** Client connections accepted and still open (every phase: head, plain request, proxied, answered with an error; not those refused past the ceiling). */
  openConnections(): number;
  /** Resolves once every accepted client connection has closed (those answered past the ceiling too). */
  connectionsClosed(): Promise<void>;
  /**
   * Stop accepting for now (a gateway worker that holds more than its share): the listening handle is closed, open
   * connections are untouched, and the server is not shut down. Listen again to resume; a drain shuts it down.
   */
  pauseAccepting(): void;
};

/** Create (not listen) a gateway server for one surface (the client-facing port, the admin port, or both in `dev`). */
export function createGatewayServer(ctx: GatewayContext, surface: Surface = 'combined'): GatewayServer {
  const timeout = ctx.config.gatewayHandshakeTimeoutMs;
  const httpServer = http.createServer({
    maxHeaderSize: ctx.config.gatewayMaxHeaderBytes,
    headersTimeout: timeout,
    requestTimeout: timeout,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    connectionsCheckingInterval: CONNECTIONS_CHECK_INTERVAL_MS,
  });
  // It never listens: 'listening' is what starts its connection tracking (timeouts, closeAllConnections).
  httpServer.emit('listening');
  httpServer.on('request', (req, res) => void handleRequest(ctx, req, res, surface));
  httpServer.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
    // Node removed its own error listeners: the wrapper's come first (an unhandled socket error would crash the process).
    const conn = wrapNetSocket(socket, HEAD_HANDLERS);
    onUpgrade(ctx, req, conn, head, surface, incomingVerdict(req));
  });
  httpServer.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const answer = err.code === 'HPE_HEADER_OVERFLOW' ? Answer.HEADERS_TOO_LARGE : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? Answer.REQUEST_TIMEOUT : Answer.BAD_REQUEST;
    ctx.metrics.request(CLIENT_ERROR, answer.status);
    socket.end(rawErrorResponse(answer));
    socket.destroySoon();
  });

  const reader = new HeadReader({
    maxHeaderBytes: ctx.config.gatewayMaxHeaderBytes,
    timeoutMs: timeout,
    http: httpServer,
    onUpgrade: (head, socket, early) => onUpgrade(ctx, withSocket(head, socket), socket, early, surface, undefined),
    onRefuse: (socket, err) => {
      ctx.metrics.request(CLIENT_ERROR, err.status);
      writeRawError(socket, err, CLOSE_GRACE_MS);
    },
  });
  // Node's own `maxConnections` closes sockets past it without a word (a reset in a reconnect storm): past this
  // ceiling a socket is answered 503 + Retry-After at once instead, from descriptors kept for it (FD_RESERVE).
  const ceiling = ctx.maxConnections + SOCKET_HEADROOM;
  let open = 0;
  let refusing = 0;
  let dropping = false;
  let closedWaiters: Array<() => void> = [];
  const settleIfNone = (): void => {
    if (open + refusing > 0 || closedWaiters.length === 0) return;
    const waiters = closedWaiters;
    closedWaiters = [];
    for (const resolve of waiters) resolve();
  };
  const openClosed = (): void => {
    open--;
    settleIfNone();
  };
  const refusalClosed = (): void => {
    refusing--;
    settleIfNone();
  };
  const onConnection = (accept: () => RelaySocket, drop: () => void): void => {
    if (open < ceiling) {
      open++;
      const socket = accept();
      socket.onClosed = openClosed;
      reader.accept(socket);
      return;
    }
    if (refusing < REFUSAL_RESERVE) {
      refusing++;
      const socket = accept();
      socket.onClosed = refusalClosed;
      refuse(ctx, socket, Answer.OVERLOADED);
      return;
    }
    drop();
    if (!dropping) {
      dropping = true;
      ctx.logger.warn({ ceiling, refusing }, 'socket limit reached and the refusal reserve in use: closing new connections without an answer');
      setTimeout(() => (dropping = false), LOG_REPEAT_MS).unref();
    }
  };
  // Half-open like Node's HTTP sockets: a client's FIN after its upgrade is passed on to the pod, not a close.
  // The connection listener only runs on a Node without the TCP bindings (takeAccepts false).
  const server = net.createServer({ noDelay: true, allowHalfOpen: true }, (socket) => {
    onConnection(
      () => wrapNetSocket(socket, HEAD_HANDLERS),
      () => socket.destroy(),
    );
  }) as GatewayServer;
  takeAccepts(server, onConnection, HEAD_HANDLERS);
  server.connectionsClosed = () => (open + refusing === 0 ? Promise.resolve() : new Promise<void>((resolve) => closedWaiters.push(resolve)));
  // A connection still sending its first head has no request yet: idle, as Node's own tracking counts it.
  server.closeIdleConnections = () => {
    httpServer.closeIdleConnections();
    reader.destroyPending();
  };
  server.closeAllConnections = () => {
    httpServer.closeAllConnections();
    reader.destroyPending();
  };
  server.openConnections = () => open;
  let paused = false;
  server.pauseAccepting = () => {
    if (!server.listening) return;
    paused = true;
    server.close();
    server.once('listening', () => (paused = false));
  };
  // Its connection-tracking interval is cleared with the listening server (not while it only paused accepting).
  server.on('close', () => {
    if (!paused || ctx.draining) httpServer.close();
  });
  let exhausted = false;
  server.on('error', (err: NodeJS.ErrnoException) => {
    // accept() failures: libuv closes the pending connection and keeps listening. (Listen errors are start()'s.)
    if (err.syscall !== 'accept') return;
    if (err.code === 'EMFILE' || err.code === 'ENFILE') ctx.metrics.fdExhausted('accept');
    if (!exhausted) {
      exhausted = true;
      ctx.logger.error({ err }, 'accept failed (out of file descriptors?): new connections are closed, existing ones keep running');
      setTimeout(() => (exhausted = false), LOG_REPEAT_MS).unref();
    }
  });
  return server;
}

/** The parser's head as the handshake reads it. */
function withSocket(head: RequestHead, socket: RelaySocket): ClientRequest {
  return { method: head.method, url: head.url, rawHeaders: head.rawHeaders, headers: head.headers, socket };
}

/** The parser's upgrade rules for an upgrade Node's parser read (a later request on a keep-alive connection, another method). */
function incomingVerdict(req: http.IncomingMessage): EdgeError | undefined {
  let hostFields = 0;
  let hasTransferEncoding = false;
  let contentLength: string | undefined;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (name === 'host') hostFields++;
    else if (name === 'transfer-encoding') hasTransferEncoding = true;
    else if (name === 'content-length') contentLength = raw[i + 1];
  }
  const verdict = headVerdict({
    method: req.method ?? '',
    strictLine: req.httpVersion === HTTP_1_1 && req.url?.charCodeAt(0) === 0x2f,
    upgrade: true,
    hostFields,
    hasTransferEncoding,
    contentLength,
    headers: { host: req.headers.host ?? '' },
  });
  return verdict.kind === 'refuse' ? verdict.refusal.error : undefined;
}

function refuse(ctx: GatewayContext, socket: RelaySocket, err: EdgeError): void {
  ctx.metrics.upgrade(err.status);
  writeRawError(socket, err, CLOSE_GRACE_MS);
}

/**
 * Validate, resolve and hand an upgrade to the proxy (`socket` already adopted; `malformed`: the parser's refusal
 * of a head Node read). Never throws: whatever fails answers that one client.
 */
function onUpgrade(ctx: GatewayContext, req: ClientRequest, socket: RelaySocket, head: Buffer, surface: Surface, malformed: EdgeError | undefined): void {
  const t0 = performance.now();
  if (malformed) {
    ctx.metrics.request(CLIENT_ERROR, malformed.status);
    writeRawError(socket, malformed, CLOSE_GRACE_MS);
    return;
  }
  const route = routeOn(surface, req.url);
  if (route.kind !== 'connect') {
    const err = route.kind === 'invalid_pod_id' ? Answer.INVALID_POD_ID : route.kind === 'bad_query' ? Answer.BAD_QUERY : route.kind === 'not_found' ? Answer.NOT_FOUND : Answer.UPGRADE_ELSEWHERE;
    refuse(ctx, socket, err);
    return;
  }
  if (req.method !== 'GET') return refuse(ctx, socket, Answer.METHOD_NOT_ALLOWED);
  const upgrade = req.headers.upgrade;
  if (typeof upgrade !== 'string' || (upgrade !== WEBSOCKET && upgrade.toLowerCase() !== WEBSOCKET)) return refuse(ctx, socket, Answer.NOT_WEBSOCKET);
  if (ctx.draining) return refuse(ctx, socket, Answer.GATEWAY_DRAINING);
  if (ctx.proxy.size() >= ctx.maxConnections) return refuse(ctx, socket, Answer.OVERLOADED);

  const { podId, query } = route;
  const requestId = requestIdOf(req);
  let resolution: Resolution | Promise<Resolution>;
  try {
    resolution = ctx.resolver.resolve(podId);
    if (!(resolution instanceof Promise)) return connect(ctx, req, socket, head, podId, query, requestId, resolution, t0);
  } catch (err) {
    return unreachable(ctx, socket, podId, requestId, err);
  }
  resolution.then(
    (r) => {
      if (socket.destroyed) return;
      if (ctx.draining) return refuse(ctx, socket, Answer.GATEWAY_DRAINING);
      if (ctx.proxy.size() >= ctx.maxConnections) return refuse(ctx, socket, Answer.OVERLOADED);
      try {
        connect(ctx, req, socket, head, podId, query, requestId, r, t0);
      } catch (err) {
        unreachable(ctx, socket, podId, requestId, err);
      }
    },
    (err: unknown) => unreachable(ctx, socket, podId, requestId, err),
  );
}

/** A resolver or connect path that threw: 502 upstream_unreachable for this client only, logged once. */
function unreachable(ctx: GatewayContext, socket: RelaySocket, podId: string, requestId: string, err: unknown): void {
  logUpstreamFailure(ctx.logger, Resolved.UNREACHABLE, { podId, upstream: undefined, requestId, reason: UpstreamFailure.RESOLVE_FAILED, err });
  if (!socket.destroyed) refuse(ctx, socket, Resolved.UNREACHABLE);
}

function connect(ctx: GatewayContext, req: ClientRequest, socket: RelaySocket, head: Buffer, podId: string, query: string, requestId: string, r: Resolution, t0: number): void {
  if (!isUpstream(r)) {
    // The resolver's own 502/504 (a failed or slow DNS lookup); its 404/503 answers are the client's business.
    if (r.status === Resolved.UNREACHABLE.status || r.status === Resolved.TIMEOUT.status) {
      logUpstreamFailure(ctx.logger, r, { podId, upstream: undefined, requestId, reason: UpstreamFailure.RESOLVE_FAILED });
    }
    return refuse(ctx, socket, r);
  }
  const request = buildUpstreamRequest(req, query, r, requestId, ctx.trustedProxies);
  // The pod's uWebSockets.js drops a longer head, and hangs on more lines: answer for it, without blaming it.
  if (request.length > ctx.config.gatewayMaxHeaderBytes || headerLines(request) > POD_MAX_HEADER_LINES) return refuse(ctx, socket, Answer.HEAD_TOO_LARGE_FOR_POD);
  ctx.proxy.forward(socket, head, r, request, t0, podId, requestId);
}
