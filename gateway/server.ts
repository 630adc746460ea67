/**
 * The gateway's HTTP server: a bare `http.Server` whose 'upgrade' event feeds the proxy. Node's parser
 * enforces the header size limit (431) and the handshake timeout (slowloris, 408); descriptor
 * exhaustion never crashes it.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { handleRequest } from './api.js';
import { CLOSE_GRACE_MS, CONNECTIONS_CHECK_INTERVAL_MS, FD_RESERVE, KEEP_ALIVE_TIMEOUT_MS, LOG_REPEAT_MS } from './constants.js';
import type { GatewayContext } from './context.js';
import { buildUpstreamRequest, headerLines, requestIdOf } from './handshake.js';
import { UpgradeProxy } from './proxy.js';
import { Answer, rawErrorResponse, writeRawError } from './respond.js';
import { isUpstream, Resolved, type Resolution } from './resolvers/resolver.js';
import { routeOn, type Surface } from './surface.js';
import { logUpstreamFailure, UpstreamFailure } from './upstream-failure.js';
import { POD_MAX_HEADER_LINES } from '../src/constants.js';
import type { EdgeError } from '../src/errors.js';

const WEBSOCKET = 'websocket';

/** Create (not listen) a gateway server for one surface (the client-facing port, the admin port, or both in `dev`). */
export function createGatewayServer(ctx: GatewayContext, surface: Surface = 'combined'): http.Server {
  const timeout = ctx.config.gatewayHandshakeTimeoutMs;
  const server = http.createServer({
    maxHeaderSize: ctx.config.gatewayMaxHeaderBytes,
    headersTimeout: timeout,
    requestTimeout: timeout,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    connectionsCheckingInterval: CONNECTIONS_CHECK_INTERVAL_MS,
    noDelay: true,
  });
  // Beyond this, Node closes new sockets at once: room for 503 answers but never past the descriptor budget.
  server.maxConnections = ctx.maxConnections + FD_RESERVE / 2;

  server.on('request', (req, res) => void handleRequest(ctx, req, res, surface));
  server.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => onUpgrade(ctx, req, socket, head, surface));
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const answer = err.code === 'HPE_HEADER_OVERFLOW' ? Answer.HEADERS_TOO_LARGE : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? Answer.REQUEST_TIMEOUT : Answer.BAD_REQUEST;
    ctx.metrics.request('client_error', answer.status);
    socket.end(rawErrorResponse(answer));
    socket.destroySoon();
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
  let dropping = false;
  server.on('drop', () => {
    if (!dropping) {
      dropping = true;
      ctx.logger.warn({ maxSockets: server.maxConnections }, 'socket limit reached: closing new connections without an answer');
      setTimeout(() => (dropping = false), LOG_REPEAT_MS).unref();
    }
  });
  return server;
}

function refuse(ctx: GatewayContext, socket: Socket, err: EdgeError): void {
  ctx.metrics.upgrade(err.status);
  writeRawError(socket, err, CLOSE_GRACE_MS);
}

/** Validate, resolve and hand an upgrade to the proxy. Never throws: whatever fails answers that one client. */
export function onUpgrade(ctx: GatewayContext, req: http.IncomingMessage, socket: Socket, head: Buffer, surface: Surface = 'combined'): void {
  const t0 = performance.now();
  UpgradeProxy.adopt(socket);
  const route = routeOn(surface, req.url);
  if (route.kind !== 'connect') {
    const err = route.kind === 'invalid_pod_id' ? Answer.INVALID_POD_ID : route.kind === 'bad_query' ? Answer.BAD_QUERY : route.kind === 'not_found' ? Answer.NOT_FOUND : Answer.UPGRADE_ELSEWHERE;
    refuse(ctx, socket, err);
    return;
  }
  if (req.method !== 'GET') return refuse(ctx, socket, Answer.METHOD_NOT_ALLOWED);
  const upgrade = req.headers.upgrade;
  if (upgrade === undefined || (upgrade !== WEBSOCKET && upgrade.toLowerCase() !== WEBSOCKET)) return refuse(ctx, socket, Answer.NOT_WEBSOCKET);
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
function unreachable(ctx: GatewayContext, socket: Socket, podId: string, requestId: string, err: unknown): void {
  logUpstreamFailure(ctx.logger, Resolved.UNREACHABLE, { podId, upstream: undefined, requestId, reason: UpstreamFailure.RESOLVE_FAILED, err });
  if (!socket.destroyed) refuse(ctx, socket, Resolved.UNREACHABLE);
}

function connect(ctx: GatewayContext, req: http.IncomingMessage, socket: Socket, head: Buffer, podId: string, query: string, requestId: string, r: Resolution, t0: number): void {
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
