/**
 * Load driver built on the reference client: `npm run load -- --clients 500 --duration 60s [--url http://127.0.0.1:8080]`.
 * Opens N drain-aware clients (ramped), pings on each, prints one progress line a second, then closes them all.
 */
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import { EdgeClient } from './client.js';

/** Options of {@link runLoad}. */
export interface LoadOptions {
  url: string;
  clients: number;
  durationMs: number;
  /** Clients start evenly spread over this window. */
  rampMs: number;
  /** Each client pings this often (0 = never). */
  pingMs: number;
  /** Progress line period (0 = none). */
  reportMs: number;
  /** Stop early (Ctrl-C). */
  signal?: AbortSignal;
  /** Where progress lines go (default stdout). */
  write?: (line: string) => void;
}

/** What a run measured. */
export interface LoadSummary {
  clients: number;
  /** Clients with an open connection when the run ended. */
  openAtEnd: number;
  /** Highest number of simultaneously open clients. */
  peakOpen: number;
  welcomes: number;
  reconnectNotices: number;
  failures: number;
  /** Distinct pods that ever welcomed a client. */
  podsSeen: number;
  /** Open clients per pod at the end. */
  perPod: Record<string, number>;
  rttMs: { samples: number; p50: number; p99: number; max: number };
}

/** Defaults of the CLI flags. */
export const LOAD_DEFAULTS = { url: 'http://127.0.0.1:8080', clients: 100, duration: '60s', pingMs: 5_000, reportMs: 1_000, maxRampMs: 10_000 } as const;

/** Parse `60s`, `2m`, `500ms`, `1h` or a bare number of seconds into ms; NaN when malformed. */
export function parseDuration(raw: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(raw);
  if (!m) return Number.NaN;
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return Math.round(Number(m[1]) * unit);
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Run the load; resolves with the summary once every client is closed. */
export async function runLoad(opts: LoadOptions): Promise<LoadSummary> {
  const write = opts.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const clients: EdgeClient[] = [];
  const rtts: number[] = [];
  const pods = new Set<string>();
  let peakOpen = 0;
  const timers: Array<ReturnType<typeof setTimeout>> = [];
  const started = Date.now();

  const openClients = () => clients.filter((c) => c.state === 'open');
  const perPod = () => {
    const out: Record<string, number> = {};
    for (const c of openClients()) if (c.podId) out[c.podId] = (out[c.podId] ?? 0) + 1;
    return out;
  };
  const totals = () => clients.reduce((a, c) => ({ welcomes: a.welcomes + c.stats.welcomes, notices: a.notices + c.stats.reconnectNotices, failures: a.failures + c.stats.failures }), { welcomes: 0, notices: 0, failures: 0 });

  for (let i = 0; i < opts.clients; i++) {
    const client = new EdgeClient({ url: opts.url, WebSocket });
    client.on('welcome', (w) => pods.add(w.podId));
    client.on('message', (m) => {
      if (m.type === 'pong' && typeof m.t === 'number') rtts.push(Date.now() - m.t);
    });
    clients.push(client);
    const delay = opts.clients > 1 ? Math.round((opts.rampMs * i) / (opts.clients - 1)) : 0;
    timers.push(setTimeout(() => client.start(), delay));
  }

  const ping = opts.pingMs > 0 ? setInterval(() => {
    const t = Date.now();
    for (const c of clients) c.send({ type: 'ping', t });
  }, opts.pingMs) : undefined;

  const report = () => {
    const open = openClients().length;
    peakOpen = Math.max(peakOpen, open);
    if (opts.reportMs <= 0) return;
    const t = totals();
    const dist = Object.entries(perPod()).sort(([a], [b]) => a.localeCompare(b)).map(([p, n]) => `${p}:${n}`).join(' ');
    write(`t=${Math.round((Date.now() - started) / 1000)}s open ${open}/${opts.clients} · pods ${Object.keys(perPod()).length} [${dist}] · drain notices ${t.notices} · failures ${t.failures}`);
  };
  const reporter = setInterval(report, opts.reportMs > 0 ? opts.reportMs : 250);

  await new Promise<void>((resolve) => {
    const end = setTimeout(resolve, opts.durationMs);
    opts.signal?.addEventListener('abort', () => {
      clearTimeout(end);
      resolve();
    }, { once: true });
  });

  report();
  const endPerPod = perPod();
  const openAtEnd = openClients().length;
  for (const t of timers) clearTimeout(t);
  clearInterval(reporter);
  if (ping) clearInterval(ping);
  for (const c of clients) c.stop(1000, 'load run finished');
  const t = totals();
  rtts.sort((a, b) => a - b);
  return {
    clients: opts.clients,
    openAtEnd,
    peakOpen,
    welcomes: t.welcomes,
    reconnectNotices: t.notices,
    failures: t.failures,
    podsSeen: pods.size,
    perPod: endPerPod,
    rttMs: { samples: rtts.length, p50: percentile(rtts, 50), p99: percentile(rtts, 99), max: rtts.at(-1) ?? 0 },
  };
}

const USAGE = `Usage: npm run load -- [--clients N] [--duration 60s] [--url http://127.0.0.1:8080] [--ramp 10s] [--ping 5s]
  --clients   concurrent clients (default ${LOAD_DEFAULTS.clients})
  --duration  how long to hold them: 60s, 2m, 500ms (default ${LOAD_DEFAULTS.duration})
  --url       gateway base URL (default ${LOAD_DEFAULTS.url})
  --ramp      start the clients evenly over this window (default: a third of the duration, at most 10s)
  --ping      each client pings this often, 0 = never (default 5s)`;

/** Parse CLI flags; throws an Error whose message lists every bad flag. */
export function parseLoadArgs(argv: string[]): Omit<LoadOptions, 'signal' | 'write'> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: { clients: { type: 'string' }, duration: { type: 'string' }, url: { type: 'string' }, ramp: { type: 'string' }, ping: { type: 'string' }, quiet: { type: 'boolean' } },
  });
  const problems: string[] = [];
  const clients = Number(values.clients ?? LOAD_DEFAULTS.clients);
  if (!Number.isInteger(clients) || clients < 1 || clients > 100_000) problems.push(`--clients ${values.clients}: expected an integer from 1 to 100000`);
  const durationMs = parseDuration(values.duration ?? LOAD_DEFAULTS.duration);
  if (!(durationMs > 0)) problems.push(`--duration ${values.duration}: expected a duration like 60s, 2m or 500ms`);
  const rampMs = values.ramp !== undefined ? parseDuration(values.ramp) : Math.min(LOAD_DEFAULTS.maxRampMs, Math.floor(durationMs / 3));
  if (!(rampMs >= 0)) problems.push(`--ramp ${values.ramp}: expected a duration like 10s`);
  const pingMs = values.ping !== undefined ? parseDuration(values.ping) : LOAD_DEFAULTS.pingMs;
  if (!(pingMs >= 0)) problems.push(`--ping ${values.ping}: expected a duration like 5s (0 = never)`);
  const url = values.url ?? LOAD_DEFAULTS.url;
  try {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') problems.push(`--url ${url}: expected an http:// or https:// gateway URL`);
  } catch {
    problems.push(`--url ${url}: not a URL`);
  }
  if (problems.length > 0) throw new Error(problems.join('\n'));
  return { url, clients, durationMs, rampMs, pingMs, reportMs: values.quiet ? 0 : LOAD_DEFAULTS.reportMs };
}

async function main(): Promise<number> {
  let opts;
  try {
    opts = parseLoadArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`load: ${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  const abort = new AbortController();
  process.once('SIGINT', () => abort.abort());
  process.once('SIGTERM', () => abort.abort());
  process.stdout.write(`load: ${opts.clients} clients → ${opts.url} for ${opts.durationMs / 1000}s (ramp ${opts.rampMs / 1000}s); watch ${opts.url}/\n`);
  const summary = await runLoad({ ...opts, signal: abort.signal });
  process.stdout.write(`${JSON.stringify({ summary })}\n`);
  return 0;
}

if (import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main().then(
    (code) => {
      process.exitCode = code;
      // Closing sockets finish their handshakes in the background; do not hang on a slow peer.
      setTimeout(() => process.exit(code), 2_000).unref();
    },
    (err: unknown) => {
      process.stderr.write(`load: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
