/**
 * Request-target parsing. Only the raw (never percent-decoded) target is looked at, so `%2F`, dot
 * segments, backslashes and the like can only ever make a pod id invalid; the path sent upstream is
 * always the constant SOCKET_PATH.
 */
import { ASSIGN_PATH, CONNECT_PREFIX, CONNECT_SUFFIX, DNS1123_LABEL } from '../src/constants.js';
import { GatewayPath } from './constants.js';

/** What a request target asks for. */
export type Route =
  | { kind: 'connect'; podId: string; query: string }
  | { kind: 'invalid_pod_id' }
  | { kind: 'bad_query' }
  | { kind: 'assign'; query: string }
  | { kind: 'status_page' }
  | { kind: 'healthz' }
  | { kind: 'readyz' }
  | { kind: 'metrics' }
  | { kind: 'api_pods' }
  | { kind: 'api_events' }
  /** `/api/keys/<key>`, the key segment raw (the handler decodes and checks it). */
  | { kind: 'api_key'; key: string }
  | { kind: 'not_found' };

const MAX_LABEL = 63;
const MIN_CONNECT_LENGTH = CONNECT_PREFIX.length + CONNECT_SUFFIX.length;
// A query forwarded upstream must not be able to break the request line: visible ASCII only, no '#'.
const SAFE_QUERY = /^[\x21-\x22\x24-\x7e]*$/;

const FIXED = new Map<string, Route>([
  [GatewayPath.STATUS_PAGE, { kind: 'status_page' }],
  [GatewayPath.HEALTHZ, { kind: 'healthz' }],
  [GatewayPath.READYZ, { kind: 'readyz' }],
  [GatewayPath.METRICS, { kind: 'metrics' }],
  [GatewayPath.API_PODS, { kind: 'api_pods' }],
  [GatewayPath.API_EVENTS, { kind: 'api_events' }],
]);
const NOT_FOUND: Route = { kind: 'not_found' };
const INVALID_POD_ID: Route = { kind: 'invalid_pod_id' };
const BAD_QUERY: Route = { kind: 'bad_query' };

/** True for a DNS-1123 label: a-z, 0-9 and '-', 1..63 characters, alphanumeric at both ends. */
export function isPodId(s: string): boolean {
  return s.length > 0 && s.length <= MAX_LABEL && DNS1123_LABEL.test(s);
}

/** Parse a raw request target (`req.url`). Never decodes, never throws. */
export function parseTarget(target: string | undefined): Route {
  if (!target || target.charCodeAt(0) !== 0x2f /* '/' */) return NOT_FOUND;
  let end = target.length;
  const hash = target.indexOf('#');
  if (hash !== -1) end = hash;
  const q = target.indexOf('?');
  const pathEnd = q !== -1 && q < end ? q : end;
  const path = pathEnd === target.length ? target : target.slice(0, pathEnd);

  if (path.length >= MIN_CONNECT_LENGTH && path.startsWith(CONNECT_PREFIX) && path.endsWith(CONNECT_SUFFIX)) {
    const podId = path.slice(CONNECT_PREFIX.length, path.length - CONNECT_SUFFIX.length);
    if (!isPodId(podId)) return INVALID_POD_ID;
    const query = pathEnd < end ? target.slice(pathEnd + 1, end) : '';
    if (query.length > 0 && !SAFE_QUERY.test(query)) return BAD_QUERY;
    return { kind: 'connect', podId, query };
  }
  if (path.startsWith(GatewayPath.API_KEYS_PREFIX)) return { kind: 'api_key', key: path.slice(GatewayPath.API_KEYS_PREFIX.length) };
  if (path === ASSIGN_PATH) return { kind: 'assign', query: pathEnd < end ? target.slice(pathEnd + 1, end) : '' };
  return FIXED.get(path) ?? NOT_FOUND;
}
