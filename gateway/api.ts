/**
 * Plain HTTP routes: /ws/assign, /api/pods, /api/keys/<key>, /api/events, /healthz, /readyz, /metrics, the status page, each
 * only on the surface that serves it (gateway/surface.ts). HEAD answers like GET and changes nothing.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PLACEMENT_KEY } from '../src/constants.js';
import { edgeError, type EdgeError } from '../src/errors.js';
import { sendError, sendJson } from '../src/http.js';
import { connectPath, parsePlacementKey } from '../src/placement-key.js';
import { METRICS_CONTENT_TYPE } from '../src/metrics.js';
import type { KeySummary, PodRecord } from '../src/registry/registry.js';
import { API_EVENTS_LIMIT } from './constants.js';
import type { GatewayContext } from './context.js';
import { assignKey } from './keyed-assign.js';
import { Answer } from './respond.js';
import type { Route } from './routes.js';
import { routeOn, type Surface } from './surface.js';
import { STATUS_PAGE_HTML } from './status-page.js';
import { Resolved } from './resolvers/resolver.js';
import { insidePodCidrs } from './resolvers/pod-cidrs.js';

const HEAD = 'HEAD';
const READ_METHODS = new Set(['GET', HEAD]);
const byPodId = (a: PodRecord, b: PodRecord) => (a.podId < b.podId ? -1 : a.podId > b.podId ? 1 : 0);
const REGISTRY_FAILED = edgeError('EDGE_ERR_REGISTRY_UNAVAILABLE', 'the pod registry did not answer');

/**
 * The `/api/pods` item of DESIGN.md, plus `startedAt` and the deletion cost the scaler last wrote (null when none)
 * for the status page, the pod's `adminPort` (null when its heartbeat has none), so a tool that can reach the
 * pod (the k6 drain test against `rtc-edge dev`) finds its `/drain`, and its placement keys as of the view's last
 * sync: `keyCount` and the first API_PODS_KEYS_LISTED of them in `keys`.
 */
function podJson(p: PodRecord, costs: Record<string, number> | undefined, keys: KeySummary | undefined) {
  return { podId: p.podId, ip: p.ip, port: p.port, adminPort: p.adminPort ?? null, connections: p.connections, draining: p.draining, cordoned: p.cordoned === true, updatedAt: p.updatedAt, startedAt: p.startedAt, deletionCost: costs?.[p.podId] ?? null, keyCount: keys?.count ?? 0, keys: keys?.keys ?? [] };
}

/** The placement key of an `/api/keys/<key>` segment, percent-decoded like `?key=`; undefined unless it is one. */
function decodedKey(raw: string): string | undefined {
  let key: string;
  try {
    key = decodeURIComponent(raw);
  } catch {
    return undefined;
  }
  return PLACEMENT_KEY.test(key) ? key : undefined;
}

/** Handle one plain (non-upgrade) request. Never throws: failures become JSON errors. */
export async function handleRequest(ctx: GatewayContext, req: IncomingMessage, res: ServerResponse, surface: Surface = 'combined'): Promise<void> {
  const route = routeOn(surface, req.url);
  const status = await dispatch(ctx, route, req, res).catch((err: unknown) => {
    ctx.logger.error({ err, url: req.url }, 'request failed');
    if (!res.headersSent) sendError(res, edgeError('EDGE_ERR_INTERNAL'));
    else res.destroy();
    return 500;
  });
  ctx.metrics.request(route.kind, status);
}

async function dispatch(ctx: GatewayContext, route: Route, req: IncomingMessage, res: ServerResponse): Promise<number> {
  const fail = (err: EdgeError) => {
    sendError(res, err);
    return err.status;
  };
  switch (route.kind) {
    case 'invalid_pod_id':
      return fail(Answer.INVALID_POD_ID);
    case 'bad_query':
      return fail(Answer.BAD_QUERY);
    case 'connect':
      return fail(Answer.UPGRADE_REQUIRED);
    case 'not_found':
      return fail(Answer.NOT_FOUND);
    default:
      break;
  }
  if (!READ_METHODS.has(req.method ?? '')) {
    sendJson(res, Answer.METHOD_NOT_ALLOWED.status, Answer.METHOD_NOT_ALLOWED.toJSON(), { allow: 'GET, HEAD' });
    return Answer.METHOD_NOT_ALLOWED.status;
  }
  switch (route.kind) {
    case 'healthz':
      sendJson(res, 200, { status: 'ok' });
      return 200;
    case 'readyz':
      if (ctx.draining) return fail(Answer.GATEWAY_DRAINING);
      if (ctx.workers && !ctx.workers.allUp()) return fail(Answer.WORKER_DOWN);
      // The primary proxies nothing itself: its answer has no `proxied` (the aggregated metrics have the total).
      sendJson(res, 200, { status: 'ready', registry: ctx.view.state(), ...(ctx.workers?.primary ? {} : { proxied: ctx.proxy.active.size }) });
      return 200;
    case 'metrics': {
      const text = await (ctx.workers?.primary ? ctx.workers.primary.metrics() : ctx.metrics.registry.metrics());
      res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE, 'cache-control': 'no-store' });
      res.end(text);
      return 200;
    }
    case 'status_page':
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(STATUS_PAGE_HTML);
      return 200;
    case 'assign': {
      const key = parsePlacementKey(route.query);
      if (key.kind === 'invalid') return fail(Answer.INVALID_KEY);
      if (ctx.view.state() === 'unavailable') return fail(Resolved.REGISTRY_UNAVAILABLE);
      // HEAD must not count as a handed-out assignment (that would skew the spread of real ones), nor claim a key.
      if (key.kind === 'none') {
        // A pod the connect path would refuse (502 pod_address_forbidden) is never handed out.
        const pod = ctx.assigner.pick(insidePodCidrs(ctx.view.live(), ctx.podCidrs), req.method !== HEAD);
        if (!pod) return fail(Answer.NO_PODS);
        sendJson(res, 200, { podId: pod.podId, url: connectPath(pod.podId) });
        return 200;
      }
      let pod: PodRecord | undefined;
      try {
        pod = await assignKey(ctx, key.key, req.method !== HEAD);
      } catch (err) {
        ctx.logger.debug({ err }, 'keyed assign: registry failed');
        return fail(REGISTRY_FAILED);
      }
      if (!pod) return fail(Answer.NO_PODS);
      sendJson(res, 200, { podId: pod.podId, url: connectPath(pod.podId, key.key), key: key.key });
      return 200;
    }
    case 'api_pods': {
      // From the gateway's cached view: a scrape loop or a busy status page never costs a registry round trip.
      if (ctx.view.state() === 'unavailable') return fail(Resolved.REGISTRY_UNAVAILABLE);
      const pods = ctx.view.live().sort(byPodId);
      const decision = ctx.view.decision();
      sendJson(res, 200, {
        pods: pods.map((p) => podJson(p, decision?.deletionCosts, ctx.view.keys(p.podId))),
        desiredReplicas: decision ? decision.desiredReplicas : null,
        totalConnections: pods.reduce((n, p) => n + p.connections, 0),
        // Beyond DESIGN.md, for the status page and `rtc-edge status`: the scaler's view of the workload.
        currentReplicas: decision ? decision.currentReplicas : null,
        reason: decision ? decision.reason : null,
        victims: decision?.victims ?? [],
        decidedAt: decision ? decision.at : null,
        registry: ctx.view.state(),
      });
      return 200;
    }
    case 'api_key': {
      // One registry read per lookup (an operator's question, not a poll): the owner as the registry says now.
      const key = decodedKey(route.key);
      if (key === undefined) return fail(Answer.INVALID_KEY);
      let owner: string | undefined;
      try {
        owner = await ctx.registry.ownerOf(key);
      } catch {
        return fail(REGISTRY_FAILED);
      }
      if (owner === undefined) return fail(Answer.KEY_NOT_FOUND);
      const pod = ctx.view.get(owner);
      // `pod` null: the owner has no live entry in this gateway's view (died; the next assign moves the key).
      sendJson(res, 200, { key, podId: owner, url: connectPath(owner, key), pod: pod ? podJson(pod, ctx.view.decision()?.deletionCosts, ctx.view.keys(owner)) : null });
      return 200;
    }
    case 'api_events': {
      try {
        sendJson(res, 200, { events: await ctx.registry.recentEvents(API_EVENTS_LIMIT) });
      } catch {
        return fail(REGISTRY_FAILED);
      }
      return 200;
    }
  }
}
