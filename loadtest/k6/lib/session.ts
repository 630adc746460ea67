/**
 * One logical rtc-edge client that survives drains: GET /ws/assign, open the pinned URL, ping and echo on a
 * period, and re-assign after `retryAfterMs` plus jitter on a `reconnect` notice, or after a refused connect
 * (the gateway's 404 pod_not_found / 503 pod_draining: k6 tells a script only "websocket: bad handshake").
 * Echoes carry a sequence number, so a reply that never comes, or one that skips ahead, counts as lost.
 */
import { check } from 'k6';
import http from 'k6/http';
import { WebSocket } from 'k6/websockets';
import { clearInterval, clearTimeout, setInterval, setTimeout } from 'k6/timers';
import { connectSuccess, handshake, lostMessages, pingRtt, reconnects, rehome, unexpectedCloses } from './metrics.ts';
import { wsBase } from './settings.ts';

/**
 * readyState OPEN. k6's WebSocket has no CONNECTING/OPEN/... constants at run time (grafana/k6
 * internal/js/modules/k6/websockets defines none), although @types/k6 declares them.
 */
export const WS_OPEN = 1;

/** Close codes a healthy run may see: normal, going away (gateway shutdown), service restart (drain). */
export const EXPECTED_CLOSE_CODES = [1000, 1001, 1012];

/** Tunables of a session. */
export interface SessionOptions {
  /** Gateway base URL (http or https). */
  baseUrl: string;
  /** Ping and echo period; 0 = never. */
  pingMs: number;
  /** Extra random share of the wait before a re-assign (0.5 = up to +50 %). */
  jitter: number;
  /** Wait before re-assigning after a refused or failed connect (no notice gives one). */
  retryMs: number;
  /** Connect straight to this pod first (`/ws/<podId>/connect`), skipping the first assign. */
  pinnedPod?: string;
  /** Called on every welcome; `rehomed` is set when it follows a drain notice and comes from another pod. */
  onWelcome?: (podId: string, rehomed: Rehome | undefined) => void;
}

/** A drain notice as the client saw it. */
export interface Notice {
  /** ms since epoch. */
  at: number;
  retryAfterMs: number;
  podId: string | undefined;
}

/** A re-home: the notice that caused it and how long it took from that notice to the new welcome. */
export interface Rehome {
  notice: Notice;
  ms: number;
}

/** GET /ws/assign: the pod and its pinned path, or undefined (a failed `checks` sample) when the gateway has none. */
export function assign(baseUrl: string): { podId: string; url: string } | undefined {
  const res = http.get(`${baseUrl}/ws/assign`, { headers: { accept: 'application/json' }, tags: { name: 'assign' } });
  const body = res.status === 200 ? (res.json() as { podId?: unknown; url?: unknown }) : {};
  const ok = check(res, { 'assign answers 200 with a pod': () => typeof body.podId === 'string' && typeof body.url === 'string' });
  return ok ? { podId: body.podId as string, url: body.url as string } : undefined;
}

/** The close code k6 reports: the close event's `code`, else the one in the error text ("websocket: close 1006 …"). */
function closeCode(event: unknown, errorText: string | undefined): number | undefined {
  const code = (event as { code?: unknown } | undefined)?.code;
  if (typeof code === 'number') return code;
  const m = errorText ? /websocket: close (\d{4})/.exec(errorText) : null;
  return m ? Number(m[1]) : undefined;
}

/** A drain-aware client; `start()` it, and it keeps one connection until `stop()` or the VU ends. */
export class EdgeSession {
  podId: string | undefined;
  welcomes = 0;
  private ws: WebSocket | undefined;
  private stopped = false;
  private timer: number | undefined;
  private notice: Notice | undefined;
  private lastNotice: Notice | undefined;
  private seq = 0;

  constructor(private readonly opts: SessionOptions) {}

  start(): void {
    if (this.opts.pinnedPod) this.connect(this.opts.pinnedPod, `/ws/${this.opts.pinnedPod}/connect`);
    else this.assign();
  }

  /** Close with 1000 and cancel any pending re-assign. */
  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const ws = this.ws;
    this.ws = undefined;
    if (ws && ws.readyState <= WS_OPEN) ws.close(1000, 'done');
  }

  private later(ms: number): void {
    if (this.stopped) return;
    reconnects.add(1);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.assign();
    }, Math.max(0, Math.round(ms)));
  }

  private jittered(ms: number): number {
    return ms + ms * this.opts.jitter * Math.random();
  }

  private assign(): void {
    if (this.stopped) return;
    const pod = assign(this.opts.baseUrl);
    if (!pod) {
      this.later(this.jittered(this.opts.retryMs));
      return;
    }
    this.connect(pod.podId, pod.url);
  }

  private connect(podId: string, path: string): void {
    const ws = new WebSocket(`${wsBase(this.opts.baseUrl)}${path}`);
    this.ws = ws;
    const opened = Date.now();
    let open = false;
    let errorText: string | undefined;
    let ping: number | undefined;
    const outstanding: Array<{ seq: number; at: number }> = [];

    ws.addEventListener('open', () => {
      open = true;
      connectSuccess.add(1);
      handshake.add(Date.now() - opened);
      if (this.opts.pingMs > 0) {
        ping = setInterval(() => {
          if (ws.readyState !== WS_OPEN || this.notice) return;
          const seq = ++this.seq;
          outstanding.push({ seq, at: Date.now() });
          ws.send(JSON.stringify({ type: 'ping', t: Date.now() }));
          ws.send(JSON.stringify({ type: 'echo', data: { seq } }));
        }, this.opts.pingMs);
      }
    });
    ws.addEventListener('message', (e) => {
      const raw = (e as { data?: unknown }).data;
      if (typeof raw !== 'string') return;
      const msg = JSON.parse(raw) as { type?: string; podId?: string; t?: number; data?: { seq?: number }; retryAfterMs?: number };
      if (msg.type === 'welcome') {
        this.welcomes++;
        const before = this.lastNotice;
        const rehomed = before !== undefined && before.podId !== msg.podId ? { notice: before, ms: Date.now() - before.at } : undefined;
        if (rehomed) rehome.add(rehomed.ms);
        this.lastNotice = undefined;
        this.podId = msg.podId;
        check(msg, { 'welcome names the pod that was assigned': (m) => m.podId === podId });
        this.opts.onWelcome?.(msg.podId ?? '', rehomed);
      } else if (msg.type === 'pong' && typeof msg.t === 'number') {
        pingRtt.add(Date.now() - msg.t);
      } else if (msg.type === 'echo' && typeof msg.data?.seq === 'number') {
        const seq = msg.data.seq;
        // Replies come in order: any earlier sequence number still waiting was lost.
        while (outstanding.length > 0 && outstanding[0].seq < seq) {
          outstanding.shift();
          lostMessages.add(1, { during: 'steady' });
        }
        if (outstanding.length > 0 && outstanding[0].seq === seq) outstanding.shift();
      } else if (msg.type === 'reconnect') {
        this.notice = { at: Date.now(), retryAfterMs: typeof msg.retryAfterMs === 'number' ? msg.retryAfterMs : this.opts.retryMs, podId };
      }
    });
    ws.addEventListener('error', (e) => {
      errorText = String((e as { error?: unknown }).error ?? '');
    });
    ws.addEventListener('close', (e) => {
      if (ping !== undefined) clearInterval(ping);
      if (this.ws === ws) this.ws = undefined;
      const notice = this.notice;
      this.notice = undefined;
      // After our own close() k6 drops what still arrives (readyState CLOSING): those replies are not lost.
      if (outstanding.length > 0 && !this.stopped) lostMessages.add(outstanding.length, { during: notice ? 'drain' : 'steady' });
      if (!open) {
        connectSuccess.add(0);
        this.later(this.jittered(this.opts.retryMs));
        return;
      }
      const code = closeCode(e, errorText);
      if (code !== undefined && !EXPECTED_CLOSE_CODES.includes(code)) unexpectedCloses.add(1, { code: String(code) });
      if (this.stopped) return;
      if (notice) {
        this.lastNotice = notice;
        // Wait what the node asked, from when it asked, plus jitter so a drained pod's clients do not return at once.
        this.later(notice.at + this.jittered(notice.retryAfterMs) - Date.now());
      } else {
        this.later(this.jittered(this.opts.retryMs));
      }
    });
  }
}
