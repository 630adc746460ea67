/** Test helpers for socket node tests: start a node on loopback port 0, capture its logs, real `ws` clients. */
import { once } from 'node:events';
import WebSocket from 'ws';
import { loadConfig, type Config } from '../src/config.js';
import { createMemoryRegistry, type Registry } from '../src/registry/index.js';
import { start, type SocketNodeHandle, type SocketDeps } from '../socket/index.js';
import { captureLogs } from './support/logs.js';

let seq = 0;

/** Config for a test node: ports 0, loopback identity, fast drain, plus `env`. */
export function testConfig(env: Record<string, string> = {}, overrides: Partial<Config> = {}): Config {
  return loadConfig({ SOCKET_PORT: '0', ADMIN_PORT: '0', POD_IP: '127.0.0.1', POD_NAME: `t-${process.pid}-${++seq}`, DRAIN_WINDOW_MS: '200', ...env }, 'socket', overrides);
}

/** A started node with its registry and captured logs. */
export interface TestNode {
  node: SocketNodeHandle;
  registry: Registry;
  lines: Record<string, unknown>[];
  url: string;
  admin: string;
  config: Config;
}

/** Start a node on 127.0.0.1 with a memory registry (unless `deps.registry`/REDIS_URL says otherwise). */
export async function startNode(env: Record<string, string> = {}, deps: Partial<SocketDeps> = {}): Promise<TestNode> {
  const config = testConfig(env);
  const { logger, lines } = captureLogs();
  const registry = deps.registry ?? (config.redisUrl ? undefined : createMemoryRegistry());
  const node = await start(config, { logger, host: '127.0.0.1', ...deps, ...(registry ? { registry } : {}) });
  return { node, registry: registry!, lines, url: `ws://127.0.0.1:${node.port}/ws/connect`, admin: `http://127.0.0.1:${node.adminPort}`, config };
}

/** One received frame. */
export interface Frame {
  binary: boolean;
  data: Buffer;
  at: number;
}

/** A `ws` client that queues every frame and records its close. */
export class Client {
  readonly frames: Frame[] = [];
  private waiters: Array<() => void> = [];
  private read = 0;
  readonly closed: Promise<{ code: number; reason: string; at: number }>;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, binary: boolean) => {
      this.frames.push({ binary, data, at: performance.now() });
      for (const w of this.waiters.splice(0)) w();
    });
    ws.on('error', () => undefined);
    this.closed = new Promise((resolve) => ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString(), at: performance.now() })));
  }

  /** Connect and wait for the open event. */
  static async open(url: string, protocols?: string | string[]): Promise<Client> {
    const ws = new WebSocket(url, protocols);
    const client = new Client(ws);
    await Promise.race([
      once(ws, 'open'),
      once(ws, 'unexpected-response').then(([, res]) => {
        throw new Error(`upgrade refused: ${(res as { statusCode: number }).statusCode}`);
      }),
    ]);
    return client;
  }

  /** The next unread frame (waits up to `ms`). */
  async next(ms = 5000): Promise<Frame> {
    const deadline = Date.now() + ms;
    while (this.read >= this.frames.length) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no frame within timeout');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.frames[this.read++]!;
  }

  /** The next frame, which must be a JSON text frame. */
  async json(ms?: number): Promise<Record<string, unknown>> {
    const f = await this.next(ms);
    if (f.binary) throw new Error('expected a text frame, got binary');
    return JSON.parse(f.data.toString('utf8')) as Record<string, unknown>;
  }

  send(data: string | Buffer): void {
    this.ws.send(data);
  }

  /** Close (if open) and wait for the close event. */
  async end(): Promise<void> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close();
    await this.closed;
  }
}

/** The status and JSON body of an upgrade the server refused. */
export function refusedUpgrade(url: string): Promise<{ status: number; body: Record<string, unknown>; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('open', () => {
      ws.terminate();
      reject(new Error('upgrade unexpectedly accepted'));
    });
    ws.on('error', () => undefined);
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) as Record<string, unknown>, headers: res.headers }));
    });
  });
}

/** Poll `fn` until it returns a truthy value or `ms` passes (a throw counts as not yet, e.g. Redis down). */
export async function waitFor<T>(fn: () => T | Promise<T>, ms = 5000, every = 20): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, every));
  }
}
