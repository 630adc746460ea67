/**
 * The WebSocket port: `/ws/connect` only, the protocol of DESIGN.md, the handler hooks (`onUpgrade` before
 * the 101, as the uWebSockets.js UpgradeAsync example: request data copied at once, aborts handled). Never
 * throws into uWS.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../src/config.js';
import { createCidrMatcher } from '../src/cidr.js';
import { CloseCode, Header, SOCKET_PATH } from '../src/constants.js';
import { clientAddress } from '../src/forwarded.js';
import { ERRORS, type ErrorName } from '../src/errors.js';
import { CloseReason, HANDLER_ERROR_LOG_INTERVAL_MS, OVERSIZE_READ_FACTOR } from './constants.js';
import { retryAfterMs } from './drain.js';
import type { MessageHandler } from './handler.js';
import { errorReply } from '../src/http.js';
import { writeReply } from './http.js';
import type { SocketMetrics } from './metrics.js';
import * as protocol from './protocol.js';
import { Session, type SessionHost, type SessionOrigin, type UserData } from './session.js';
import { keyMovedReply } from './key-moved.js';
import type { KeyKeeper } from './keys.js';
import { runUpgradeHook, type HookOutcome, type HookRun } from './upgrade.js';
import { parsePlacementKey } from '../src/placement-key.js';
import { uWS, type HttpRequest, type HttpResponse, type TemplatedApp, type us_socket_context_t } from './uws.js';

/** Options of createSocketServer. */
export interface SocketServerOptions {
  config: Pick<Config, 'socketMaxPayloadBytes' | 'socketMaxBackpressureBytes' | 'socketIdleTimeoutS' | 'socketUpgradeTimeoutMs' | 'socketTrustedProxies'>;
  podId: string;
  handler: MessageHandler;
  logger: Logger;
  metrics: SocketMetrics;
  /** Filled with open sessions and emptied as they close (the node's connection count). */
  sessions: Set<Session>;
  /** Keyed placement: admits a connect's key, and learns which keyed sessions open and close. */
  keys: Pick<KeyKeeper, 'admit' | 'opened' | 'closed'>;
  /** Upgrades are refused with 503 node_draining while this is true. */
  isDraining(): boolean;
  newSessionId?: () => string;
}

const MS_PER_S = 1000;

/** Build the uWS app of the WebSocket port (not listening yet). */
export function createSocketServer(opts: SocketServerOptions): TemplatedApp {
  const { config, podId, handler, logger, metrics, sessions, keys, isDraining } = opts;
  const newSessionId = opts.newSessionId ?? randomUUID;
  const maxPayload = config.socketMaxPayloadBytes;
  // The gateways: only their X-Forwarded-For is believed (src/forwarded.ts, the gateway's own rule).
  const trustedProxies = createCidrMatcher(config.socketTrustedProxies);

  // One budget for every handler failure (messages and upgrades): a broken handler must not flood the log.
  let lastHandlerLog = 0;
  let suppressedHandlerErrors = 0;
  const logHandlerFailure = (fields: Record<string, unknown>, msg: string) => {
    metrics.handlerErrors.inc();
    const now = Date.now();
    if (now - lastHandlerLog >= HANDLER_ERROR_LOG_INTERVAL_MS) {
      logger.warn({ ...fields, suppressed: suppressedHandlerErrors }, msg);
      lastHandlerLog = now;
      suppressedHandlerErrors = 0;
    } else suppressedHandlerErrors++;
  };
  const handlerFailed = (session: Session, err: unknown) => {
    logHandlerFailure({ err, sessionId: session.sessionId }, 'application handler failed');
    session.sendError('EDGE_ERR_HANDLER_FAILED');
  };
  const invoke = <A>(session: Session, hook: ((s: Session, arg: A) => void | Promise<void>) | undefined, arg: A) => {
    if (!hook) return;
    let result: void | Promise<void>;
    try {
      result = hook(session, arg);
    } catch (err) {
      handlerFailed(session, err);
      return;
    }
    if (result && typeof (result as Promise<void>).then === 'function') (result as Promise<void>).then(undefined, (err: unknown) => handlerFailed(session, err));
  };

  const host: SessionHost = {
    podId,
    dropped(session) {
      metrics.backpressureDropped.inc();
      session.close(CloseCode.POLICY_VIOLATION, CloseReason.BACKPRESSURE);
    },
  };

  const refuse = (res: HttpResponse, name: ErrorName, headers?: Record<string, string>) => {
    metrics.upgradesRejected.inc({ error: ERRORS[name].code });
    writeReply(res, errorReply(name, undefined, headers));
  };

  const refuseDraining = (res: HttpResponse) => refuse(res, 'EDGE_ERR_NODE_DRAINING', { [Header.RETRY_AFTER]: String(Math.ceil(retryAfterMs() / MS_PER_S)) });

  /** The handshake fields the 101 needs, copied out of `req` before anything async. */
  interface Handshake {
    key: string;
    chosen: string;
    extensions: string;
    query: string;
    origin: SessionOrigin;
  }

  const refuseKeyMoved = (res: HttpResponse, key: string, owner: string | undefined) => {
    metrics.upgradesRejected.inc({ error: ERRORS.EDGE_ERR_KEY_MOVED.code });
    writeReply(res, keyMovedReply(key, owner));
  };

  // The UpgradeAsync pattern: everything from req is copied now, the answer is written (corked) once the hook and
  // the key check settled, and nothing is written after the client went away. The hook runs first, so that a
  // client the application refuses neither claims a key nor learns its owner.
  function upgradeAsync(res: HttpResponse, req: HttpRequest, context: us_socket_context_t, hs: Handshake): void {
    let run: HookRun | undefined;
    if (handler.onUpgrade) {
      const headers: Record<string, string> = {};
      req.forEach((name, value) => {
        headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
      });
      run = runUpgradeHook(handler.onUpgrade, { podId, headers, query: new URLSearchParams(hs.query), clientAddress: hs.origin.clientAddress, key: hs.origin.key }, config.socketUpgradeTimeoutMs);
    }
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
      run?.abort();
      metrics.upgradesRejected.inc({ error: 'client_aborted' });
    });
    const accepted: Promise<HookOutcome> = run ? run.outcome : Promise.resolve({ kind: 'accept', data: undefined });
    void accepted
      .then(async (outcome) => {
        const key = hs.origin.key;
        const verdict = outcome.kind === 'accept' && key !== undefined && !aborted ? await keys.admit(key) : undefined;
        return { outcome, verdict };
      })
      .then(({ outcome, verdict }) => {
        if (aborted) return;
        try {
          if (outcome.kind === 'accept') {
            // The node may have started draining while the hook or the key check ran.
            if (isDraining()) {
              refuseDraining(res);
              return;
            }
            if (verdict && !verdict.admit) {
              refuseKeyMoved(res, hs.origin.key!, verdict.owner);
              return;
            }
            const session = new Session(host, newSessionId(), { ...hs.origin, data: outcome.data });
            res.cork(() => res.upgrade<UserData>({ session }, hs.key, hs.chosen, hs.extensions, context));
            return;
          }
          if (outcome.kind === 'failed') logHandlerFailure({ err: outcome.err, clientAddress: hs.origin.clientAddress }, `onUpgrade failed: refused with ${outcome.reply.status}`);
          else if (outcome.warning) logHandlerFailure({ clientAddress: hs.origin.clientAddress }, outcome.warning);
          metrics.upgradesRejected.inc({ error: outcome.code });
          writeReply(res, outcome.reply);
        } catch (err) {
          logger.error({ err }, 'upgrade answer failed');
        }
      });
  }

  const app = uWS.App();
  app.ws<UserData>(SOCKET_PATH, {
    // uWS cuts frames over its limit with a bare TCP close; reading up to a multiple lets the node answer 1009.
    maxPayloadLength: maxPayload * OVERSIZE_READ_FACTOR,
    maxBackpressure: config.socketMaxBackpressureBytes,
    closeOnBackpressureLimit: 0,
    idleTimeout: config.socketIdleTimeoutS,
    sendPingsAutomatically: config.socketIdleTimeoutS > 0,
    upgrade(res, req, context) {
      try {
        if (isDraining()) {
          refuseDraining(res);
          return;
        }
        // Everything read from req is copied now: req is only valid during this synchronous call.
        const key = req.getHeader('sec-websocket-key');
        if (!key) {
          refuse(res, 'EDGE_ERR_UPGRADE_REQUIRED');
          return;
        }
        // The server must pick one offered subprotocol; the first is the client's preference.
        const protocols = req.getHeader('sec-websocket-protocol');
        const chosen = protocols ? (protocols.split(',')[0] ?? '').trim() : '';
        const extensions = req.getHeader('sec-websocket-extensions');
        const query = req.getQuery() ?? '';
        const peer = Buffer.from(res.getRemoteAddressAsText()).toString('latin1');
        const forwardedFor = req.getHeader(Header.FORWARDED_FOR);
        const placement = parsePlacementKey(query);
        if (placement.kind === 'invalid') {
          refuse(res, 'EDGE_ERR_INVALID_KEY');
          return;
        }
        const origin: SessionOrigin = { clientAddress: clientAddress(peer, forwardedFor === '' ? undefined : forwardedFor, trustedProxies), key: placement.kind === 'key' ? placement.key : undefined, data: undefined };
        if (!handler.onUpgrade && origin.key === undefined) {
          res.upgrade<UserData>({ session: new Session(host, newSessionId(), origin) }, key, chosen, extensions, context);
          return;
        }
        upgradeAsync(res, req, context, { key, chosen, extensions, query, origin });
      } catch (err) {
        logger.error({ err }, 'upgrade failed');
        try {
          writeReply(res, errorReply('EDGE_ERR_INTERNAL'));
        } catch {
          /* the response was already used */
        }
      }
    },
    open(ws) {
      const { session } = ws.getUserData();
      session.ws = ws;
      sessions.add(session);
      keys.opened(session);
      metrics.connectionsOpened.inc();
      try {
        session.send(protocol.welcome(podId, session.sessionId));
        invoke(session, handler.onOpen, undefined);
      } catch (err) {
        logger.error({ err }, 'open failed');
      }
    },
    message(ws, data, isBinary) {
      const { session } = ws.getUserData();
      try {
        if (data.byteLength > maxPayload) {
          metrics.messageErrors.inc({ error: 'message_too_big' });
          session.close(CloseCode.MESSAGE_TOO_BIG, CloseReason.TOO_BIG);
          return;
        }
        if (isBinary) {
          metrics.messagesReceived.inc({ kind: 'binary' });
          // The ArrayBuffer is neutered when this callback returns; the handler gets its own copy.
          invoke(session, handler.onBinary, new Uint8Array(data.slice(0)));
          return;
        }
        metrics.messagesReceived.inc({ kind: 'text' });
        const parsed = protocol.parseClientMessage(Buffer.from(data).toString('utf8'));
        if (!parsed.ok) {
          metrics.messageErrors.inc({ error: ERRORS[parsed.error].code });
          session.sendError(parsed.error);
          return;
        }
        const { message } = parsed;
        if (message.type === 'ping') session.send(protocol.pong(message.t));
        else if (message.type === 'echo') session.send(protocol.echo(message.data));
        else invoke(session, handler.onMessage, message);
      } catch (err) {
        handlerFailed(session, err);
      }
    },
    close(ws, code) {
      const { session } = ws.getUserData();
      session.ws = undefined;
      sessions.delete(session);
      keys.closed(session);
      metrics.connectionsClosed.inc();
      invoke(session, handler.onClose, code);
    },
  });
  // Plain HTTP on the WebSocket port is always an error, and nothing admin is served here.
  app.any('/*', (res, req) => {
    try {
      refuse(res, req.getUrl() === SOCKET_PATH ? 'EDGE_ERR_UPGRADE_REQUIRED' : 'EDGE_ERR_NOT_FOUND');
    } catch (err) {
      logger.error({ err }, 'http answer failed');
    }
  });
  return app;
}
