/** `k6/http`: blocking get/post/request, made by the main thread while this VU waits (as k6's VU does). */
import { parseDuration } from '../duration.js';
import { vu } from '../state.js';

const DEFAULT_TIMEOUT_MS = 60_000;
/** k6's error_code for a request that timed out, and the generic one. */
const ERROR_TIMEOUT = 1050;

interface Params {
  headers?: Record<string, string>;
  timeout?: string | number;
  tags?: Record<string, string>;
}

/** Go's canonical header form (`retry-after` → `Retry-After`), as k6 reports them. */
function canonical(name: string): string {
  return name
    .split('-')
    .map((p) => p.charAt(0).toUpperCase() + p.slice(1).toLowerCase())
    .join('-');
}

/** The part of k6's Response the scripts use. */
export class Response {
  constructor(
    readonly url: string,
    readonly status: number,
    readonly body: string,
    readonly headers: Record<string, string>,
    readonly timings: { duration: number },
    readonly error: string,
    readonly error_code: number,
  ) {}

  /** The body parsed as JSON (selectors are not implemented). */
  json(selector?: string): unknown {
    if (selector !== undefined) throw new Error('k6 test runtime: Response.json(selector) is not implemented');
    return JSON.parse(this.body);
  }
}

/** Make a request; network errors give status 0 and `error`, as in k6. */
export function request(method: string, url: string, body?: string | null, params?: Params | null): Response {
  vu.assertRunning();
  if (body !== undefined && body !== null && typeof body !== 'string') throw new Error('k6 test runtime: only string request bodies are implemented');
  const timeoutMs = params?.timeout === undefined ? DEFAULT_TIMEOUT_MS : parseDuration(params.timeout, 'http timeout');
  const res = vu.http({ method: method.toUpperCase(), url, headers: params?.headers ?? {}, body: body ?? undefined, timeoutMs });
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) headers[canonical(k)] = v;
  const expected = res.status >= 200 && res.status < 400;
  const tags = { method: method.toUpperCase(), url, name: url, status: String(res.status), expected_response: String(expected), ...params?.tags };
  vu.emit('http_reqs', 1, tags);
  vu.emit('http_req_duration', res.durationMs, tags);
  vu.emit('http_req_failed', expected ? 0 : 1, tags);
  return new Response(url, res.status, res.body, headers, { duration: res.durationMs }, res.error, res.errorCode === -1 ? ERROR_TIMEOUT : res.errorCode);
}

/** GET `url`. */
export function get(url: string, params?: Params | null): Response {
  return request('GET', url, null, params);
}

/** POST `body` to `url`. */
export function post(url: string, body?: string | null, params?: Params | null): Response {
  return request('POST', url, body, params);
}

export default { get, post, request };
