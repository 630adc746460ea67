/**
 * Benchmark clients in a child process, driven over IPC: a process may hold 20,000 descriptors, so a bench
 * that holds ~10,000 connections through each of several proxies spreads them over pools. Each pool times
 * its own pings (the IPC hop is never inside a measurement) and stamps storm events with a clock that all
 * processes share (`performance.timeOrigin + performance.now()`, ms).
 *
 * Run as a child: `node --import tsx loadtest/client-pool.ts` with an IPC channel; the parent side is
 * `ClientPool.start()`.
 */
import { fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { openMany, openWs, type WsConn } from './ws-lean.js';

/** Relay phase: every connection (up to `limit`) does `rounds` sequential ping/pongs, all at once. */
interface RelayOp { op: 'relay'; rounds: number; limit: number }
interface OpenOp { op: 'open'; port: number; path: string; n: number; concurrency: number }
/** One sequential round trip on the pool's last connection, timed in the pool (µs). */
interface PingOp { op: 'ping' }
interface CloseOp { op: 'close' }
/** From now on every connection that the server closes re-assigns at `assignPort` and reconnects to `connectPort`. */
interface StormArmOp { op: 'storm-arm'; assignPort: number; connectPort: number; deadlineMs: number; assignSockets: number }
/** Resolve once every armed connection is back (or the deadline passed). */
interface StormWaitOp { op: 'storm-wait' }
type Op = RelayOp | OpenOp | PingOp | CloseOp | StormArmOp | StormWaitOp;

/** What a storm looked like from one pool. */
export interface StormReport {
  /** Clock of the first close each client saw, and of its reconnect (same order; NaN = never back). */
  goneAt: number[];
  backAt: number[];
  /** Clock of each client's last successful assign. */
  assignedAt: number[];
  /** Refusals by kind: `assign 503+retry-after`, `connect 503+retry-after`, or anything else (`connect closed`, `assign 500`…). */
  refusals: Record<string, number>;
  /** Waits that a `Retry-After` asked for and the client honoured. */
  retryAfterHonoured: number;
  notBack: number;
}

const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A refusal without Retry-After is retried after this (so the run ends; it is still counted as a bad refusal). */
const BARE_RETRY_MS = 200;

// ---------------------------------------------------------------------------------------------
// Child side
// ---------------------------------------------------------------------------------------------
function assign(agent: http.Agent, port: number): Promise<{ status: number; url?: string; retryAfterS?: number }> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/ws/assign', agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        const ra = res.headers['retry-after'];
        const retryAfterS = typeof ra === 'string' && /^\d+$/.test(ra) ? Number(ra) : undefined;
        if (status !== 200) return resolve(retryAfterS === undefined ? { status } : { status, retryAfterS });
        try {
          resolve({ status, url: (JSON.parse(body) as { url: string }).url });
        } catch {
          resolve({ status: 0 });
        }
      });
      res.on('error', () => resolve({ status: 0 }));
    });
    req.on('error', () => resolve({ status: 0 }));
  });
}

function runChild(): void {
  let conns: WsConn[] = [];
  let storm: { report: StormReport; pending: number; waiters: Array<() => void> } | undefined;

  const reconnect = async (i: number, op: StormArmOp, agent: http.Agent): Promise<void> => {
    const s = storm!;
    s.report.goneAt[i] = now();
    const refuse = async (kind: string, retryAfterS: number | undefined) => {
      const key = retryAfterS !== undefined && kind.endsWith(' 503') ? `${kind}+retry-after` : kind;
      s.report.refusals[key] = (s.report.refusals[key] ?? 0) + 1;
      if (retryAfterS !== undefined) {
        s.report.retryAfterHonoured++;
        await sleep(retryAfterS * 1000);
      } else await sleep(BARE_RETRY_MS);
    };
    while (now() < op.deadlineMs) {
      const a = await assign(agent, op.assignPort);
      if (a.status !== 200 || !a.url) {
        await refuse(`assign ${a.status}`, a.retryAfterS);
        continue;
      }
      s.report.assignedAt[i] = now();
      // No handshake timeout but the storm's deadline: a browser's WebSocket has none, and a client that gave
      // up and retried would only add a second handshake to a proxy that is still working on the first.
      const r = await openWs(op.connectPort, a.url, Math.max(1, op.deadlineMs - now()));
      if ('conn' in r) {
        conns[i] = r.conn;
        s.report.backAt[i] = now();
        break;
      }
      await refuse(`connect ${r.status}`, r.retryAfterS);
    }
    if (--s.pending === 0) for (const w of s.waiters.splice(0)) w();
  };

  const handle = async (op: Op): Promise<unknown> => {
    switch (op.op) {
      case 'open': {
        const t = performance.now();
        const r = await openMany(op.port, op.path, op.n, op.concurrency);
        conns.push(...r.conns);
        return { opened: r.conns.length, failures: r.failures, ms: performance.now() - t };
      }
      case 'relay': {
        const t = performance.now();
        await Promise.all(conns.slice(0, op.limit).map(async (c, i) => {
          for (let k = 0; k < op.rounds; k++) await c.ping(i * op.rounds + k);
        }));
        return { ms: performance.now() - t };
      }
      case 'ping': {
        const c = conns[conns.length - 1]!;
        const t = performance.now();
        await c.ping(0);
        return { us: (performance.now() - t) * 1000 };
      }
      case 'close':
        for (const c of conns) c.socket.destroy();
        conns = [];
        await sleep(300);
        return {};
      case 'storm-arm': {
        const agent = new http.Agent({ keepAlive: true, maxSockets: op.assignSockets });
        const n = conns.length;
        storm = { report: { goneAt: new Array<number>(n).fill(NaN), backAt: new Array<number>(n).fill(NaN), assignedAt: new Array<number>(n).fill(NaN), refusals: {}, retryAfterHonoured: 0, notBack: 0 }, pending: n, waiters: [] };
        conns.forEach((c, i) => {
          c.onGone = () => void reconnect(i, op, agent);
        });
        return { armed: n };
      }
      case 'storm-wait': {
        const s = storm!;
        if (s.pending > 0) await new Promise<void>((r) => s.waiters.push(r));
        s.report.notBack = s.report.backAt.filter((x) => Number.isNaN(x)).length;
        return s.report;
      }
    }
  };

  process.on('message', (msg: { id: number; op: Op }) => {
    handle(msg.op).then(
      (result) => process.send!({ id: msg.id, result }),
      (err: unknown) => process.send!({ id: msg.id, error: String((err as Error)?.stack ?? err) }),
    );
  });
  process.on('disconnect', () => process.exit(0));
}

// ---------------------------------------------------------------------------------------------
// Parent side
// ---------------------------------------------------------------------------------------------
/** A pool of benchmark clients in its own process. */
export class ClientPool {
  private seq = 0;
  private readonly calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private constructor(readonly child: ChildProcess) {
    child.on('message', (m: { id: number; result?: unknown; error?: string }) => {
      const c = this.calls.get(m.id);
      if (!c) return;
      this.calls.delete(m.id);
      if (m.error !== undefined) c.reject(new Error(m.error));
      else c.resolve(m.result);
    });
    child.on('exit', () => {
      for (const c of this.calls.values()) c.reject(new Error('client pool exited'));
      this.calls.clear();
    });
  }

  /** Fork a pool process. */
  static start(): ClientPool {
    const self = fileURLToPath(import.meta.url);
    return new ClientPool(fork(self, [], { cwd: path.resolve(path.dirname(self), '..'), execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  }

  private call<T>(op: Op): Promise<T> {
    const id = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      this.calls.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ id, op });
    });
  }

  open(port: number, urlPath: string, n: number, concurrency: number): Promise<{ opened: number; failures: Record<string, number>; ms: number }> {
    return this.call({ op: 'open', port, path: urlPath, n, concurrency });
  }
  relay(rounds: number, limit: number): Promise<{ ms: number }> {
    return this.call({ op: 'relay', rounds, limit });
  }
  /** One sequential round trip, µs. */
  async ping(): Promise<number> {
    return (await this.call<{ us: number }>({ op: 'ping' })).us;
  }
  closeAll(): Promise<unknown> {
    return this.call({ op: 'close' });
  }
  stormArm(assignPort: number, connectPort: number, deadlineMs: number, assignSockets: number): Promise<{ armed: number }> {
    return this.call({ op: 'storm-arm', assignPort, connectPort, deadlineMs, assignSockets });
  }
  stormWait(): Promise<StormReport> {
    return this.call({ op: 'storm-wait' });
  }
  stop(): void {
    if (this.child.connected) this.child.disconnect();
    this.child.kill('SIGKILL');
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url) && process.send) runChild();
