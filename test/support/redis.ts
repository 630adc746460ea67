/** Start a real redis-server on a random loopback port for a test; stop/restart it to simulate outages. */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { once } from 'node:events';
import { freePort } from './net.js';

export interface RedisServer {
  port: number;
  url: string;
  /** Kill the server (SIGKILL: an outage, not a clean shutdown). */
  stop(): Promise<void>;
  /** Start it again on the same port (empty: persistence is off). */
  start(): Promise<void>;
}

async function waitForPort(port: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`redis-server did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Spawn `redis-server --port <random> --save "" --appendonly no` (with `--requirepass` when `password` is given; `url` then carries it). */
export async function startRedis(opts: { password?: string } = {}): Promise<RedisServer> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const auth = opts.password === undefined ? [] : ['--requirepass', opts.password];
  const start = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning', ...auth], { stdio: 'ignore' });
    child.once('error', (err) => { throw new Error(`cannot run redis-server (run scripts/setup.sh): ${err.message}`); });
    await waitForPort(port);
  };
  await start();
  return {
    port,
    url: opts.password === undefined ? `redis://127.0.0.1:${port}` : `redis://:${encodeURIComponent(opts.password)}@127.0.0.1:${port}`,
    async stop() {
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const exited = once(c, 'exit');
      c.kill('SIGKILL');
      await exited;
    },
    start,
  };
}
