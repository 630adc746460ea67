/**
 * `rtc-edge status --url http://… [--watch] [--interval ms] [--key K]`: the status page's view as a terminal
 * table, or with `--key` the owner of one placement key (`/api/keys/<key>`, the page's lookup).
 * The URL is the gateway's admin port (GATEWAY_ADMIN_PORT) for a role gateway, the one port in `dev`.
 */
import { DEFAULTS } from '../src/config.js';
import { ERRORS } from '../src/errors.js';

const NOT_FOUND = ERRORS.EDGE_ERR_NOT_FOUND.status;
const NOT_FOUND_CODE = ERRORS.EDGE_ERR_NOT_FOUND.code;
const KEY_NOT_FOUND_CODE = ERRORS.EDGE_ERR_KEY_NOT_FOUND.code;
/** What a 404 not_found from /api/* most likely means. */
const CLIENT_PORT_HINT = ` (is this the gateway's client port? --url needs the admin port, GATEWAY_ADMIN_PORT, default ${DEFAULTS.GATEWAY_ADMIN_PORT})`;

/** Options of {@link runStatus}. */
export interface StatusOptions {
  url: string;
  watch: boolean;
  intervalMs: number;
  /** Defaults to process.stdout / process.stderr. */
  out?: NodeJS.WritableStream & { isTTY?: boolean };
  err?: NodeJS.WritableStream;
  /** Stops `--watch` (SIGINT/SIGTERM also do). */
  signal?: AbortSignal;
  /** How many events to print (default 10). */
  events?: number;
  /** Look up this placement key's owner instead of printing the table (exit 3 when nobody owns it). */
  key?: string;
}

/** A pod as `/api/pods` reports it (extra fields are optional: older gateways may omit them). */
export interface ApiPod {
  podId: string;
  ip: string;
  port: number;
  connections: number;
  draining: boolean;
  /** No new clients go to it: the scaler plans to remove it. */
  cordoned?: boolean;
  updatedAt?: number;
  startedAt?: number;
  deletionCost?: number | null;
  /** Placement keys the pod owns, as of the gateway view's last sync. */
  keyCount?: number;
  keys?: string[];
}

/** `/api/pods`. */
export interface ApiPods {
  pods: ApiPod[];
  desiredReplicas: number | null;
  totalConnections?: number;
  currentReplicas?: number | null;
  reason?: string | null;
  deletionCosts?: Record<string, number> | null;
  /** The planned victims of the coming scale-in. */
  victims?: string[];
}

/** `/api/events`. */
export interface ApiEvents {
  events: Array<{ at: number; kind: string; message: string; podId?: string }>;
}

/** Limits of the command, in one place. */
export const STATUS_DEFAULTS = { events: 10, minIntervalMs: 100, requestTimeoutMs: 5_000 } as const;

const CLEAR_SCREEN = '\x1b[2J\x1b[H';

function fmtAge(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) return '-';
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

function fmtTime(t: number): string {
  return new Date(t).toISOString().slice(11, 19);
}

function table(head: string[], rows: string[][], rightAligned: Set<number>): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (rightAligned.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}

/** What a pod does with clients: `draining`, `cordoned` (`cordoned/victim` when the scaler plans to remove it), or `serving`. */
function podState(p: ApiPod, victim: boolean): string {
  return p.draining ? 'draining' : p.cordoned ? (victim ? 'cordoned/victim' : 'cordoned') : 'serving';
}

/** Render one snapshot as text (pure; `now` injected). */
export function renderStatus(url: string, pods: ApiPods, events: ApiEvents | null, now: number, eventLimit: number = STATUS_DEFAULTS.events): string {
  const list = [...pods.pods].sort((a, b) => b.connections - a.connections || a.podId.localeCompare(b.podId));
  const total = pods.totalConnections ?? list.reduce((s, p) => s + p.connections, 0);
  const draining = list.filter((p) => p.draining).length;
  const cordoned = list.filter((p) => p.cordoned && !p.draining).length;
  const victims = new Set(pods.victims ?? []);
  const state = (p: ApiPod) => podState(p, victims.has(p.podId));
  const cost = (p: ApiPod) => p.deletionCost ?? pods.deletionCosts?.[p.podId];
  const out: string[] = [];
  out.push(`rtc-edge status · ${url} · ${new Date(now).toISOString()}`);
  const desired = pods.desiredReplicas ?? 'n/a (no scaler has reported)';
  const current = pods.currentReplicas != null ? ` · workload ${pods.currentReplicas}` : '';
  // Older gateways report no keys: then neither the total nor the column is shown.
  const keyed = list.some((p) => typeof p.keyCount === 'number');
  const keys = keyed ? ` · keys ${list.reduce((s, p) => s + (p.keyCount ?? 0), 0)}` : '';
  out.push(`pods ${list.length} live (${draining} draining${cordoned ? `, ${cordoned} cordoned` : ''}) · desired ${desired}${current} · connections ${total}${keys}${pods.reason ? ` · ${pods.reason}` : ''}`);
  out.push('');
  if (list.length === 0) out.push('no live socket pods');
  else {
    const head = ['POD', 'ADDRESS', 'CONNS', ...(keyed ? ['KEYS'] : []), 'STATE', 'DEL-COST', 'AGE'];
    out.push(table(
      head,
      list.map((p) => [p.podId, p.ip.includes(':') ? `[${p.ip}]:${p.port}` : `${p.ip}:${p.port}`, String(p.connections), ...(keyed ? [p.keyCount === undefined ? '-' : String(p.keyCount)] : []), state(p), cost(p) == null ? '-' : String(cost(p)), fmtAge(p.startedAt === undefined ? undefined : now - p.startedAt)]),
      new Set(keyed ? [2, 3, 5, 6] : [2, 4, 5]),
    ));
  }
  out.push('');
  const evs = events?.events.slice(0, eventLimit) ?? [];
  out.push(events === null ? 'events: unavailable' : `last ${evs.length} events${evs.length === 0 ? ': none yet' : ''}`);
  for (const e of evs) out.push(`${fmtTime(e.at)}  ${e.kind.padEnd(12)}  ${e.message}${e.podId && !e.message.includes(e.podId) ? ` (${e.podId})` : ''}`);
  return `${out.join('\n')}\n`;
}

async function getJson(url: string, signal: AbortSignal | undefined, accept: readonly number[] = [200]): Promise<unknown> {
  // One controller for both the caller's stop and the request timeout (AbortSignal.any needs Node ≥ 20.3).
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new Error(`no answer within ${STATUS_DEFAULTS.requestTimeoutMs} ms`)), STATUS_DEFAULTS.requestTimeoutMs);
  const onAbort = () => ac.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  let res: Response;
  let text: string;
  try {
    res = await fetch(url, { signal: ac.signal, headers: { accept: 'application/json' } });
    text = await res.text();
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    if (ac.signal.aborted && ac.signal.reason instanceof Error) throw new Error(ac.signal.reason.message);
    // undici hides the socket error in `cause`: "connect ECONNREFUSED 127.0.0.1:8080" says more than "fetch failed".
    throw new Error(cause?.message ? `${cause.message}${cause.code && !cause.message.includes(cause.code) ? ` (${cause.code})` : ''}` : (e as Error).message);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
  if (!accept.includes(res.status)) {
    let detail = text.slice(0, 200);
    try {
      const b = JSON.parse(text) as { error?: string; message?: string };
      if (b.error) detail = `${b.error}${b.message ? `: ${b.message}` : ''}`;
      // A role gateway serves /api/* on its admin port only; its client-facing port answers 404 not_found.
      if (res.status === NOT_FOUND && b.error === NOT_FOUND_CODE) detail += CLIENT_PORT_HINT;
    } catch {
      // not JSON: keep the raw start of the body
    }
    throw new Error(`${url} answered ${res.status} ${detail}`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${url} did not answer JSON (is this an rtc-edge gateway?)`);
  }
}

/** Fetch both endpoints and render; throws with a one-line reason when the gateway cannot be read. */
export async function fetchStatus(base: string, signal?: AbortSignal, eventLimit?: number, now: () => number = Date.now): Promise<string> {
  const [pods, events] = await Promise.all([
    getJson(new URL('/api/pods', base).toString(), signal),
    getJson(new URL('/api/events', base).toString(), signal).catch(() => null),
  ]);
  const p = pods as ApiPods;
  if (!p || !Array.isArray(p.pods)) throw new Error(`${base}/api/pods is not an rtc-edge pod list`);
  const e = events as ApiEvents | null;
  return renderStatus(base, p, e && Array.isArray(e.events) ? e : null, now(), eventLimit);
}

/** `/api/keys/<key>`: 200 with the owner, or 404 key_not_found. */
interface ApiKey {
  key?: string;
  podId?: string;
  url?: string;
  pod?: ApiPod | null;
  error?: string;
}

/** Look up `key`'s owner: the line to print and whether anyone owns it; throws when the gateway cannot answer. */
export async function fetchKeyOwner(base: string, key: string, signal?: AbortSignal): Promise<{ owned: boolean; text: string }> {
  const b = (await getJson(new URL(`/api/keys/${encodeURIComponent(key)}`, base).toString(), signal, [200, NOT_FOUND])) as ApiKey;
  if (b.error === NOT_FOUND_CODE) throw new Error(`${base} answered ${NOT_FOUND} ${NOT_FOUND_CODE}${CLIENT_PORT_HINT}`);
  if (b.error === KEY_NOT_FOUND_CODE) return { owned: false, text: `nobody owns ${JSON.stringify(key)} (no client of it is connected)\n` };
  if (typeof b.podId !== 'string') throw new Error(`${base}/api/keys/… did not answer an owner (${b.error ?? 'no podId'})`);
  const p = b.pod;
  const state = p ? podState(p, false) : 'not live: the next assign moves it';
  const detail = p ? `, ${p.connections} connections${typeof p.keyCount === 'number' ? `, ${p.keyCount} keys` : ''}` : '';
  return { owned: true, text: `${b.key ?? key} → ${b.podId} (${state}${detail})${b.url ? ` · ${b.url}` : ''}\n` };
}

/** Run the command; resolves with the process exit code (0 ok, 1 gateway unreadable, 2 bad arguments, 3 `--key` owned by nobody). */
export async function runStatus(opts: StatusOptions): Promise<number> {
  const out = opts.out ?? process.stdout;
  const err = opts.err ?? process.stderr;
  let base: string;
  try {
    const u = new URL(opts.url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http');
    base = u.origin;
  } catch {
    err.write(`rtc-edge status: --url ${JSON.stringify(opts.url)} is not an http:// or https:// URL\n`);
    return 2;
  }
  if (!Number.isFinite(opts.intervalMs) || opts.intervalMs < STATUS_DEFAULTS.minIntervalMs) {
    err.write(`rtc-edge status: --interval must be a number of milliseconds ≥ ${STATUS_DEFAULTS.minIntervalMs}\n`);
    return 2;
  }
  const limit = opts.events ?? STATUS_DEFAULTS.events;

  if (opts.key !== undefined) {
    if (opts.watch) {
      err.write('rtc-edge status: --key looks up one key once; it does not go with --watch\n');
      return 2;
    }
    try {
      const r = await fetchKeyOwner(base, opts.key, opts.signal);
      out.write(r.text);
      return r.owned ? 0 : 3;
    } catch (e) {
      err.write(`rtc-edge status: cannot look up ${JSON.stringify(opts.key)} at ${base}: ${(e as Error).message}\n`);
      return 1;
    }
  }

  if (!opts.watch) {
    try {
      out.write(await fetchStatus(base, opts.signal, limit));
      return 0;
    } catch (e) {
      err.write(`rtc-edge status: cannot read ${base}: ${(e as Error).message}\n`);
      return 1;
    }
  }

  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  opts.signal?.addEventListener('abort', onSignal, { once: true });
  const tty = out.isTTY === true;
  try {
    while (!stop.signal.aborted) {
      let frame: string;
      try {
        frame = await fetchStatus(base, stop.signal, limit);
      } catch (e) {
        if (stop.signal.aborted) break;
        frame = `rtc-edge status · ${base} · ${new Date().toISOString()}\ngateway unreachable: ${(e as Error).message}\n(retrying every ${opts.intervalMs} ms; Ctrl-C to stop)\n`;
      }
      // On a terminal redraw in place; into a pipe or file append frames separated by a blank line.
      out.write(tty ? CLEAR_SCREEN + frame : `${frame}\n`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, opts.intervalMs);
        stop.signal.addEventListener('abort', done, { once: true });
        function done() {
          clearTimeout(t);
          stop.signal.removeEventListener('abort', done);
          resolve();
        }
      });
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    opts.signal?.removeEventListener('abort', onSignal);
  }
  return 0;
}
