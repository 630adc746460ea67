/**
 * Gateway test helpers: tiny upstreams of our own (a `ws` server that records handshakes, raw TCP
 * servers that refuse / hang / close / half-close), an "admin" listener that counts every hit, pods
 * registered in a memory registry, a gateway on port 0, and raw HTTP exchanges.
 */
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { WebSocketServer, type WebSocket } from 'ws';
import { loadConfig, type Config } from '../../src/config.js';
import { createMemoryRegistry, type PodRecord, type Registry } from '../../src/registry/index.js';
import { start, type GatewayDeps, type GatewayHandle } from '../../gateway/index.js';
import { captureLogs } from './logs.js';

/** A handshake the upstream saw. */
export interface SeenRequest {
  url: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
}

/** A `ws` upstream on 127.0.0.1: echoes text/binary, records every handshake, sends `hello` on open. */
export interface WsUpstream {
  port: number;
  seen: SeenRequest[];
  sockets: Set<WebSocket>;
  /** Connections currently open on the server's TCP side. */
  open(): number;
  close(): Promise<void>;
}

/** Start a `ws` upstream serving any path (the test asserts which one was asked for). */
export async function startWsUpstream(opts: { hello?: string; protocols?: (offered: Set<string>) => string | false; perMessageDeflate?: boolean } = {}): Promise<WsUpstream> {
  const server = http.createServer((_req, res) => {
    res.writeHead(404).end();
  });
  const seen: SeenRequest[] = [];
  const sockets = new Set<WebSocket>();
  let tcp = 0;
  server.on('connection', (s) => {
    tcp++;
    s.on('close', () => tcp--);
  });
  const wss = new WebSocketServer({
    server,
    perMessageDeflate: opts.perMessageDeflate ?? false,
    ...(opts.protocols ? { handleProtocols: opts.protocols } : {}),
  });
  wss.on('connection', (ws, req) => {
    seen.push({ url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders });
    sockets.add(ws);
    ws.on('close', () => sockets.delete(ws));
    ws.on('error', () => undefined);
    ws.on('message', (data, binary) => ws.send(data, { binary }));
    if (opts.hello !== undefined) ws.send(opts.hello);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    seen,
    sockets,
    open: () => tcp,
    async close() {
      for (const ws of sockets) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/** What a raw upstream does with each accepted connection. */
export type RawBehaviour =
  | 'hang' // accept, read, never answer
  | 'close' // accept, then close at once
  | 'close-after-101' // answer 101, then close
  | 'half-close-after-101' // answer 101, then send FIN but keep reading
  | 'open-after-101' // answer 101 and stay open until the peer closes
  | 'respond-503' // answer 503 with a JSON body (a draining node)
  | 'send-then-end'; // answer 101, write `payload`, then FIN; a FIN from the peer does not stop it

/** A raw TCP upstream with one behaviour; counts accepted and open connections. */
export interface RawUpstream {
  port: number;
  accepted(): number;
  open(): number;
  close(): Promise<void>;
}

const RESPONSE_101 = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n';

/** Start a raw upstream (`payload`: what 'send-then-end' sends after its 101). */
export async function startRawUpstream(behaviour: RawBehaviour, payload: Buffer = Buffer.alloc(0)): Promise<RawUpstream> {
  let accepted = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    accepted++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    if (behaviour === 'close') {
      s.destroy();
      return;
    }
    let head = '';
    const onData = (d: Buffer) => {
      if (!head.includes('\r\n\r\n')) {
        head += d.toString('latin1');
        if (!head.includes('\r\n\r\n')) return;
        if (behaviour === 'hang') return;
        if (behaviour === 'respond-503') {
          const body = '{"error":"node_draining","message":"draining"}';
          s.end(`HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
          return;
        }
        s.write(RESPONSE_101);
        if (behaviour === 'send-then-end') s.end(payload);
        else if (behaviour === 'close-after-101') s.destroy();
        else if (behaviour === 'half-close-after-101') s.end();
      }
    };
    s.on('data', onData);
    s.on('end', () => {
      if (behaviour !== 'send-then-end') s.destroy();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted: () => accepted,
    open: () => sockets.size,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** An HTTP listener standing in for a pod's admin port: counts every request and connection. */
export interface AdminCounter {
  port: number;
  hits(): number;
  connections(): number;
  close(): Promise<void>;
}

/** Start an admin counter. */
export async function startAdminCounter(): Promise<AdminCounter> {
  let hits = 0;
  let conns = 0;
  const server = http.createServer((_req, res) => {
    hits++;
    res.end('{"drained":0,"remaining":0}');
  });
  server.on('connection', () => conns++);
  server.on('upgrade', (_req, socket: net.Socket) => {
    hits++;
    socket.destroy();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    hits: () => hits,
    connections: () => conns,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/** A pod record for `port` on 127.0.0.1 (fresh heartbeat). */
export function pod(podId: string, port: number, extra: Partial<PodRecord> = {}): PodRecord {
  const now = Date.now();
  return { podId, ip: '127.0.0.1', port, connections: 0, draining: false, startedAt: now, updatedAt: now, heartbeatMs: 60_000, ...extra };
}

/** Gateway config for tests: ports 0, loopback, plus `env`. */
export function gatewayConfig(env: Record<string, string> = {}, overrides: Partial<Config> = {}): Config {
  return loadConfig({ GATEWAY_PORT: '0', GATEWAY_ADMIN_PORT: '0', POD_IP: '127.0.0.1', POD_NAME: 'gateway-test', ...env }, 'gateway', overrides);
}

/** A started gateway with its registry and captured logs. */
export interface TestGateway {
  gateway: GatewayHandle;
  registry: Registry;
  lines: Record<string, unknown>[];
  config: Config;
  /** `http://127.0.0.1:<port>`: the client-facing port. */
  base: string;
  /** `http://127.0.0.1:<adminPort>`: /metrics, /api/*, the status page. */
  admin: string;
  ws(podId: string, query?: string): string;
}

/** Start a gateway on 127.0.0.1 with a memory registry (unless deps.registry is given). */
export async function startGateway(env: Record<string, string> = {}, deps: Partial<GatewayDeps> = {}): Promise<TestGateway> {
  const config = gatewayConfig(env);
  const { logger, lines } = captureLogs();
  const registry = deps.registry ?? createMemoryRegistry();
  const gateway = await start(config, { logger, host: '127.0.0.1', ...deps, registry });
  const base = `http://127.0.0.1:${gateway.port}`;
  return { gateway, registry, lines, config, base, admin: `http://127.0.0.1:${gateway.adminPort}`, ws: (podId, query) => `ws://127.0.0.1:${gateway.port}/ws/${podId}/connect${query ? `?${query}` : ''}` };
}

/** A raw HTTP exchange: send `request` bytes, collect everything until the server closes (or `ms`). */
export function rawExchange(port: number, request: string | Buffer, ms = 5000): Promise<{ text: string; status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no close within ${ms} ms; got ${JSON.stringify(Buffer.concat(chunks).toString('latin1').slice(0, 200))}`));
    }, ms);
    s.on('data', (d) => chunks.push(d));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ text, status: m ? Number(m[1]) : 0, body: text.slice(text.indexOf('\r\n\r\n') + 4) });
    });
    s.write(request);
  });
}

/** Send `request` and resolve with the status line of the answer (then close): for upgrades that succeed. */
export function upgradeStatus(port: number, request: string | Buffer, ms = 5000): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error('no answer'));
    }, ms);
    s.on('error', () => undefined);
    s.on('data', (d) => {
      text += d.toString('latin1');
      if (!text.includes('\r\n')) return;
      clearTimeout(timer);
      s.destroy();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : 0, text });
    });
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ status: 0, text });
    });
    s.write(request);
  });
}

/** One upgrade attempt: `{status: 101}` as soon as it is accepted (then closed), else the status and JSON error code once the gateway closes. */
export function upgradeOutcome(port: number, request: string | Buffer, ms = 5000): Promise<{ status: number; error?: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let text = '';
    let done = false;
    const finish = (r: { status: number; error?: string }) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => {
      done = true;
      s.destroy();
      reject(new Error(`no answer within ${ms} ms: ${JSON.stringify(text.slice(0, 200))}`));
    }, ms);
    s.on('error', () => undefined);
    s.on('data', (d) => {
      text += d.toString('latin1');
      if (text.startsWith('HTTP/1.1 101 ')) finish({ status: 101 });
    });
    s.on('close', () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      let error: string | undefined;
      try {
        error = (JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as { error?: string }).error;
      } catch {
        /* not JSON */
      }
      finish({ status: m ? Number(m[1]) : 0, ...(error ? { error } : {}) });
    });
    s.write(request);
  });
}

/** A WebSocket upgrade request head for `path`. */
export function upgradeRequest(path: string, extra = ''): string {
  return `GET ${path} HTTP/1.1\r\nHost: gw.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;
}

/** Poll `fn` until truthy or `ms` passes. */
export async function waitFor<T>(fn: () => T | Promise<T>, ms = 5000, every = 10): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, every));
  }
}

/** Open descriptors of this process. */
export function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}
