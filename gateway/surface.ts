/**
 * Which routes a listening port serves. The client-facing port serves only what clients need (`/ws/*`
 * and the probes); the operational surface (`/metrics`, `/api/*`, the status page) lives on the admin
 * port, so an Ingress or LoadBalancer in front of GATEWAY_PORT can never expose it. `dev` serves both on one.
 */
import { parseTarget, type Route } from './routes.js';

/** `client`: GATEWAY_PORT; `admin`: GATEWAY_ADMIN_PORT; `combined`: both on one port (`rtc-edge dev`). */
export type Surface = 'client' | 'admin' | 'combined';

type Kind = Route['kind'];

// invalid_pod_id and bad_query are answers about a connect route, so they belong where connect does.
const CLIENT: ReadonlySet<Kind> = new Set<Kind>(['connect', 'invalid_pod_id', 'bad_query', 'assign', 'healthz', 'readyz', 'not_found']);
const ADMIN: ReadonlySet<Kind> = new Set<Kind>(['status_page', 'metrics', 'api_pods', 'api_events', 'api_key', 'healthz', 'readyz', 'not_found']);
const NOT_FOUND: Route = { kind: 'not_found' };

/** True when `surface` serves routes of `kind`. */
export function serves(surface: Surface, kind: Kind): boolean {
  return surface === 'combined' || (surface === 'client' ? CLIENT : ADMIN).has(kind);
}

/** Parse a raw request target as seen on `surface`: a route the port does not serve is `not_found`. */
export function routeOn(surface: Surface, target: string | undefined): Route {
  const route = parseTarget(target);
  return serves(surface, route.kind) ? route : NOT_FOUND;
}
