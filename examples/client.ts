/**
 * Reference rtc-edge client for Node and the browser: assign, connect to the pinned URL, follow drain notices.
 *
 * No imports on purpose: the compiled `dist/examples/client.js` is a plain ES module a browser can load as is.
 * Pass the WebSocket constructor (`ws` in Node 20, which has no global WebSocket; `window.WebSocket` in a browser).
 *
 * Retry rules:
 * - `{"type":"reconnect","retryAfterMs"}` then close 1012 → re-assign after retryAfterMs plus jitter.
 * - connect answered `404 pod_not_found`, `503 pod_draining` or `409 key_moved` (another pod owns the key now)
 *   → re-assign at once (small jitter).
 *
 * With `key` (a room, a document, a match), every assign asks for that key's pod (`/ws/assign?key=`) and the
 * connect URL the gateway answers carries it, so all clients of one key meet on one pod, also after a drain.
 * - anything else (network error, 5xx, unexpected close) → re-assign after capped exponential backoff with full jitter.
 */

/** An event handler property; declared as a method so `ws` and DOM handler types (richer events) fit without casts. */
type Handler<E> = { bivarianceHack(ev: E): void }['bivarianceHack'];

/** The subset of the WHATWG WebSocket that both `ws` and browsers implement. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: Handler<unknown> | null;
  onmessage: Handler<{ data: unknown }> | null;
  onclose: Handler<{ code: number; reason: string }> | null;
  onerror: Handler<unknown> | null;
}

/** A WebSocket constructor: `ws` in Node, `window.WebSocket` in a browser. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** The subset of `fetch` the client uses. */
export type FetchLike = (url: string, init?: { signal?: AbortSignal; headers?: Record<string, string> }) => Promise<{
  status: number;
  json(): Promise<unknown>;
}>;

/** Server → client messages of DESIGN.md. */
export type ServerMessage =
  | { type: 'welcome'; podId: string; sessionId: string }
  | { type: 'pong'; t: unknown }
  | { type: 'echo'; data: unknown }
  | { type: 'reconnect'; reason: string; retryAfterMs: number; assignUrl: string }
  | { type: 'error'; error: string; message?: string }
  | { type: string; [key: string]: unknown };

/** Client lifecycle states. */
export type ClientState = 'idle' | 'assigning' | 'connecting' | 'open' | 'waiting' | 'stopped';

/** Why the client is about to re-assign. */
export type RetryCause = 'reconnect_notice' | 'pod_not_found' | 'pod_draining' | 'key_moved' | 'no_pods_available' | 'assign_failed' | 'connect_failed' | 'closed';

/** Event payloads the client emits. */
export interface ClientEvents {
  state: ClientState;
  assign: { podId: string; url: string };
  welcome: { podId: string; sessionId: string };
  message: ServerMessage;
  /** A `reconnect` notice (drain) arrived; the close 1012 follows. */
  reconnect: { reason: string; retryAfterMs: number; podId: string | undefined };
  close: { code: number; reason: string; podId: string | undefined; wasOpen: boolean };
  retry: { cause: RetryCause; delayMs: number; attempt: number };
  error: Error;
}

/** Options of {@link EdgeClient}. */
export interface EdgeClientOptions {
  /** Gateway base URL, e.g. `http://127.0.0.1:8080`. */
  url: string;
  /** WebSocket constructor (`ws` in Node, `window.WebSocket` in the browser). */
  WebSocket: WebSocketConstructor;
  /** Defaults to the global `fetch`. */
  fetch?: FetchLike;
  /** Re-assign after drains and failures (default true); false = one connection, then `stopped`. */
  autoReconnect?: boolean;
  /** First backoff step (default 250 ms). */
  backoffInitialMs?: number;
  /** Backoff cap (default 10 000 ms). */
  backoffMaxMs?: number;
  /** Extra fraction of retryAfterMs added at random after a drain notice (default 0.5). */
  reconnectJitter?: number;
  /** Upper bound of the random delay before an immediate re-assign (default 100 ms). */
  immediateJitterMs?: number;
  /** Abort an assign request after this long (default 5000 ms). */
  requestTimeoutMs?: number;
  /** Query string appended to the pinned connect URL (e.g. `token=…`), without the `?`. */
  query?: string;
  /** Placement key: 1–128 of `[A-Za-z0-9._:-]`; every client of one key gets the same pod. */
  key?: string;
  /** Injected for tests; defaults to Math.random. */
  random?: () => number;
}

/** Defaults of every tunable, in one place. */
export const CLIENT_DEFAULTS = {
  backoffInitialMs: 250,
  backoffMaxMs: 10_000,
  reconnectJitter: 0.5,
  immediateJitterMs: 100,
  requestTimeoutMs: 5_000,
  assignPath: '/ws/assign',
} as const;

/** A placement key (the gateway's PLACEMENT_KEY, repeated here because this file imports nothing). */
export const PLACEMENT_KEY = /^[A-Za-z0-9._:-]{1,128}$/;

/** WebSocket close code a draining socket node uses (Service Restart). */
export const CLOSE_SERVICE_RESTART = 1012;
const WS_OPEN = 1;

/** Delay before re-assigning after a drain notice: retryAfterMs plus up to `jitter` × retryAfterMs. */
export function reconnectDelay(retryAfterMs: number, jitter: number, random: () => number): number {
  const base = Number.isFinite(retryAfterMs) && retryAfterMs > 0 ? retryAfterMs : 0;
  return Math.round(base + base * jitter * random());
}

/** Capped exponential backoff with full jitter: uniform in [0, min(max, initial × 2^attempt)]. */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number, random: () => number): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling * random());
}

/** Turn `http(s)://host[:port]` plus a pinned path (which may carry `?key=`) into the `ws(s)://` URL, `query` appended. */
export function toWebSocketUrl(base: string, path: string, query?: string): string {
  const u = new URL(path, base);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  if (query) u.search = u.search ? `${u.search.slice(1)}&${query}` : query;
  return u.toString();
}

/** Classify a failed connect: the HTTP status when the WebSocket implementation reports it (`ws` does). */
export function statusFromConnectError(ev: unknown): number | undefined {
  const e = ev as { message?: unknown; error?: { message?: unknown } } | null;
  const text = `${typeof e?.message === 'string' ? e.message : ''} ${typeof e?.error?.message === 'string' ? e.error.message : ''}`;
  const m = /Unexpected server response: (\d{3})/.exec(text);
  return m ? Number(m[1]) : undefined;
}

type Listener<K extends keyof ClientEvents> = (payload: ClientEvents[K]) => void;

/**
 * One logical connection to rtc-edge that survives drains: `start()` assigns and connects, and keeps doing so
 * until `stop()`.
 */
export class EdgeClient {
  private readonly opts: Required<Omit<EdgeClientOptions, 'query' | 'fetch' | 'key'>> & { query: string | undefined; key: string | undefined; fetch: FetchLike };
  private readonly listeners = new Map<keyof ClientEvents, Set<(p: never) => void>>();
  private ws: WebSocketLike | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private abort: AbortController | undefined;
  private attempt = 0;
  private notice: { at: number; retryAfterMs: number } | undefined;
  private _state: ClientState = 'idle';
  /** Pod of the current (or last) connection. */
  podId: string | undefined;
  /** Session id from the last welcome. */
  sessionId: string | undefined;
  /** Counters for load drivers and tests. */
  readonly stats = { assigns: 0, welcomes: 0, reconnectNotices: 0, closes: 0, failures: 0, messages: 0 };

  constructor(options: EdgeClientOptions) {
    const globalFetch = (globalThis as { fetch?: FetchLike }).fetch;
    // Browsers throw "Illegal invocation" when fetch is called with another `this`.
    const f = options.fetch ?? globalFetch?.bind(globalThis);
    if (!f) throw new TypeError('EdgeClient: no fetch available; pass options.fetch');
    if (options.key !== undefined && !PLACEMENT_KEY.test(options.key)) throw new TypeError('EdgeClient: options.key must be 1-128 characters of A-Z, a-z, 0-9, ".", "_", ":" and "-"');
    if (typeof options.WebSocket !== 'function') throw new TypeError('EdgeClient: options.WebSocket must be a WebSocket constructor (the `ws` package in Node, window.WebSocket in a browser)');
    this.opts = {
      url: options.url,
      WebSocket: options.WebSocket,
      fetch: f,
      autoReconnect: options.autoReconnect ?? true,
      backoffInitialMs: options.backoffInitialMs ?? CLIENT_DEFAULTS.backoffInitialMs,
      backoffMaxMs: options.backoffMaxMs ?? CLIENT_DEFAULTS.backoffMaxMs,
      reconnectJitter: options.reconnectJitter ?? CLIENT_DEFAULTS.reconnectJitter,
      immediateJitterMs: options.immediateJitterMs ?? CLIENT_DEFAULTS.immediateJitterMs,
      requestTimeoutMs: options.requestTimeoutMs ?? CLIENT_DEFAULTS.requestTimeoutMs,
      query: options.query,
      key: options.key,
      random: options.random ?? Math.random,
    };
    new URL(this.opts.url); // throws a clear TypeError on a bad base URL
  }

  /** Current lifecycle state. */
  get state(): ClientState {
    return this._state;
  }

  /** Subscribe to an event; returns an unsubscribe function. */
  on<K extends keyof ClientEvents>(event: K, listener: Listener<K>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as (p: never) => void);
    return () => set!.delete(listener as (p: never) => void);
  }

  /** Resolve on the next occurrence of `event`. */
  once<K extends keyof ClientEvents>(event: K): Promise<ClientEvents[K]> {
    return new Promise((resolve) => {
      const off = this.on(event, (p) => {
        off();
        resolve(p);
      });
    });
  }

  /** Assign and connect; keeps reconnecting (unless autoReconnect is false) until stop(). */
  start(): void {
    if (this._state !== 'idle' && this._state !== 'stopped') return;
    this.attempt = 0;
    this.assign();
  }

  /** Close the connection and cancel every pending retry. */
  stop(code = 1000, reason = 'client stop'): void {
    this.setState('stopped');
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.abort?.abort();
    const ws = this.ws;
    this.ws = undefined;
    if (ws) {
      ws.onmessage = null;
      ws.onopen = null;
      try {
        ws.close(code, reason);
      } catch {
        // a socket still CONNECTING may throw on close in some implementations; it is gone either way
      }
    }
  }

  /** Send a JSON message on the open connection; false when not open. */
  send(message: unknown): boolean {
    if (!this.ws || this.ws.readyState !== WS_OPEN) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  /** A method, not a field read, so TypeScript does not keep a narrowing across awaits. */
  private stopped(): boolean {
    return this._state === 'stopped';
  }

  private emit<K extends keyof ClientEvents>(event: K, payload: ClientEvents[K]): void {
    for (const l of this.listeners.get(event) ?? []) {
      try {
        (l as Listener<K>)(payload);
      } catch (err) {
        if (event !== 'error') this.emit('error', err as Error);
      }
    }
  }

  private setState(s: ClientState): void {
    if (this._state === s) return;
    this._state = s;
    this.emit('state', s);
  }

  private retry(cause: RetryCause, delayMs: number): void {
    if (this.stopped()) return;
    if (!this.opts.autoReconnect) {
      this.stop();
      return;
    }
    this.emit('retry', { cause, delayMs, attempt: this.attempt });
    this.setState('waiting');
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.assign();
    }, delayMs);
  }

  private backoff(cause: RetryCause): void {
    const d = backoffDelay(this.attempt, this.opts.backoffInitialMs, this.opts.backoffMaxMs, this.opts.random);
    this.attempt++;
    this.retry(cause, d);
  }

  private immediate(cause: RetryCause): void {
    this.retry(cause, Math.round(this.opts.immediateJitterMs * this.opts.random()));
  }

  private async assign(): Promise<void> {
    if (this.stopped()) return;
    this.setState('assigning');
    this.stats.assigns++;
    const abort = new AbortController();
    this.abort = abort;
    const timeout = setTimeout(() => abort.abort(), this.opts.requestTimeoutMs);
    let status = 0;
    let body: unknown;
    try {
      const assignUrl = new URL(CLIENT_DEFAULTS.assignPath, this.opts.url);
      if (this.opts.key !== undefined) assignUrl.searchParams.set('key', this.opts.key);
      const res = await this.opts.fetch(assignUrl.toString(), { signal: abort.signal, headers: { accept: 'application/json' } });
      status = res.status;
      body = await res.json().catch(() => undefined);
    } catch (err) {
      clearTimeout(timeout);
      if (this.stopped()) return;
      this.stats.failures++;
      this.emit('error', new Error(`assign failed: ${(err as Error).message}`));
      this.backoff('assign_failed');
      return;
    }
    clearTimeout(timeout);
    if (this.stopped()) return;
    const b = body as { podId?: unknown; url?: unknown; error?: unknown; message?: unknown } | undefined;
    if (status !== 200 || typeof b?.podId !== 'string' || typeof b.url !== 'string') {
      this.stats.failures++;
      const code = typeof b?.error === 'string' ? b.error : `http_${status}`;
      this.emit('error', new Error(`assign answered ${status} ${code}${typeof b?.message === 'string' ? `: ${b.message}` : ''}`));
      this.backoff(code === 'no_pods_available' ? 'no_pods_available' : 'assign_failed');
      return;
    }
    this.emit('assign', { podId: b.podId, url: b.url });
    this.connect(b.podId, b.url);
  }

  private connect(podId: string, path: string): void {
    this.setState('connecting');
    this.podId = podId;
    this.notice = undefined;
    let ws: WebSocketLike;
    try {
      ws = new this.opts.WebSocket(toWebSocketUrl(this.opts.url, path, this.opts.query));
    } catch (err) {
      this.stats.failures++;
      this.emit('error', err as Error);
      this.backoff('connect_failed');
      return;
    }
    this.ws = ws;
    let opened = false;
    let httpStatus: number | undefined;
    ws.onopen = () => {
      opened = true;
      this.setState('open');
    };
    ws.onerror = (ev) => {
      httpStatus ??= statusFromConnectError(ev);
    };
    ws.onmessage = (ev) => this.onMessage(ev.data);
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      this.stats.closes++;
      this.emit('close', { code: ev.code, reason: ev.reason, podId, wasOpen: opened });
      if (this.stopped()) return;
      if (this.notice) {
        // Drain: wait what the node asked for (from the notice), plus jitter so clients do not return at once.
        const d = reconnectDelay(this.notice.retryAfterMs, this.opts.reconnectJitter, this.opts.random);
        this.retry('reconnect_notice', Math.max(0, this.notice.at + d - Date.now()));
      } else if (!opened) {
        this.stats.failures++;
        if (httpStatus === 404) this.immediate('pod_not_found');
        else if (httpStatus === 503) this.immediate('pod_draining');
        else if (httpStatus === 409) this.immediate('key_moved');
        else this.backoff('connect_failed');
      } else {
        this.backoff('closed');
      }
    };
  }

  private onMessage(data: unknown): void {
    if (typeof data !== 'string') return; // binary frames belong to the application
    let msg: ServerMessage;
    try {
      msg = JSON.parse(data) as ServerMessage;
    } catch {
      return;
    }
    if (typeof msg !== 'object' || msg === null || typeof msg.type !== 'string') return;
    this.stats.messages++;
    if (msg.type === 'welcome') {
      const w = msg as { podId: string; sessionId: string };
      this.stats.welcomes++;
      this.attempt = 0; // a healthy connection resets the backoff
      this.sessionId = w.sessionId;
      this.emit('welcome', { podId: w.podId, sessionId: w.sessionId });
    } else if (msg.type === 'reconnect') {
      const r = msg as { reason?: unknown; retryAfterMs?: unknown };
      const retryAfterMs = typeof r.retryAfterMs === 'number' && Number.isFinite(r.retryAfterMs) ? Math.max(0, r.retryAfterMs) : 0;
      this.stats.reconnectNotices++;
      this.notice = { at: Date.now(), retryAfterMs };
      this.emit('reconnect', { reason: typeof r.reason === 'string' ? r.reason : 'unknown', retryAfterMs, podId: this.podId });
    }
    this.emit('message', msg);
  }
}

/** CLI: `node --import tsx examples/client.ts --url http://127.0.0.1:8080 [--key room-1]` connects one client and logs what happens. */
async function main(): Promise<void> {
  const { parseArgs } = await import('node:util');
  const { values } = parseArgs({ options: { url: { type: 'string', default: 'http://127.0.0.1:8080' }, ping: { type: 'string', default: '5000' }, key: { type: 'string' } } });
  const { WebSocket } = await import('ws');
  const client = new EdgeClient({ url: values.url!, WebSocket, ...(values.key !== undefined ? { key: values.key } : {}) });
  const log = (...a: unknown[]) => console.log(new Date().toISOString(), ...a);
  client.on('assign', (a) => log('assigned', a.podId, a.url));
  client.on('message', (m) => log('message', JSON.stringify(m)));
  client.on('close', (c) => log('closed', c.code, c.reason || '', c.podId ?? ''));
  client.on('retry', (r) => log(`re-assigning in ${r.delayMs} ms (${r.cause})`));
  client.on('error', (e) => log('error', e.message));
  const pingMs = Number(values.ping);
  const ping = Number.isFinite(pingMs) && pingMs > 0 ? setInterval(() => client.send({ type: 'ping', t: Date.now() }), pingMs) : undefined;
  client.start();
  await new Promise<void>((resolve) => {
    const stop = () => {
      if (ping) clearInterval(ping);
      client.stop();
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}

const isMain = typeof process !== 'undefined' && Array.isArray(process.argv) && process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
