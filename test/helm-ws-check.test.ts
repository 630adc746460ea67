/**
 * The `helm test` script (helm/rtc-edge/files/ws-check.mjs) run as the test pod runs it (`node
 * --input-type=module -e <script>`) against a real gateway and a real socket node on loopback, and
 * against gateways that must make it fail (no pods; a connect that lands on another pod than assigned).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createMemoryRegistry } from '../src/registry/index.js';
import { start as startGateway } from '../gateway/index.js';
import { start as startSocket } from '../socket/index.js';

const SCRIPT = path.resolve(import.meta.dirname, '../helm/rtc-edge/files/ws-check.mjs');
const logger = createLogger('silent');

/** Run the script like the test pod: `node --input-type=module -e <script>` with GATEWAY_URL and TIMEOUT_S. */
async function runCheck(gatewayUrl: string, timeoutS: number): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', fs.readFileSync(SCRIPT, 'utf8')], { env: { PATH: process.env.PATH ?? '', GATEWAY_URL: gatewayUrl, TIMEOUT_S: String(timeoutS) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
  child.stderr.on('data', (c: Buffer) => { out += c.toString(); });
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, out };
}

describe('helm test script ws-check.mjs', () => {
  const registry = createMemoryRegistry();
  let gateway: Awaited<ReturnType<typeof startGateway>>;
  let socket: Awaited<ReturnType<typeof startSocket>>;

  before(async () => {
    const env = { POD_NAME: 'socket-7d9f8b6c5-abc12', POD_IP: '127.0.0.1', SOCKET_PORT: '0', ADMIN_PORT: '0', GATEWAY_PORT: '0', GATEWAY_ADMIN_PORT: '0', LOG_LEVEL: 'silent' };
    socket = await startSocket(loadConfig(env, 'socket'), { logger, registry, host: '127.0.0.1' });
    gateway = await startGateway(loadConfig({ ...env, POD_NAME: 'gateway-1' }, 'gateway'), { logger, registry, host: '127.0.0.1' });
  });
  after(async () => {
    await gateway?.close();
    await socket?.close();
    await registry.close();
  });

  test('passes against a real gateway and socket node: health, assign, pinned upgrade, welcome from that pod, pong', async () => {
    const r = await runCheck(`http://127.0.0.1:${gateway.port}`, 20);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /assigned socket-7d9f8b6c5-abc12 at \/ws\/socket-7d9f8b6c5-abc12\/connect/);
    assert.match(r.out, /welcome from socket-7d9f8b6c5-abc12/);
    assert.match(r.out, /welcome and pong received\nok\n$/);
    // The socket node saw the connection and it was closed by the script's close frame.
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(socket.connections(), 0);
  });

  test('fails (exit 1, names the cause) when the gateway has no socket pods', async () => {
    const empty = createMemoryRegistry();
    const gw = await startGateway(loadConfig({ POD_NAME: 'gateway-2', POD_IP: '127.0.0.1', GATEWAY_PORT: '0', GATEWAY_ADMIN_PORT: '0' }, 'gateway'), { logger, registry: empty, host: '127.0.0.1' });
    try {
      const r = await runCheck(`http://127.0.0.1:${gw.port}`, 3);
      assert.equal(r.code, 1, r.out);
      assert.match(r.out, /FAILED after \d+ attempts: GET \/ws\/assign: 503 .*no_pods_available/);
    } finally {
      await gw.close();
      await empty.close();
    }
  });

  test('fails when the pinned connection is welcomed by another pod than the one assigned', async () => {
    const wss = new WebSocketServer({ noServer: true });
    const server = http.createServer((req, res) => {
      if (req.url === '/healthz') return res.end('{"status":"ok"}');
      if (req.url === '/ws/assign') return res.end(JSON.stringify({ podId: 'socket-a', url: '/ws/socket-a/connect' }));
      res.statusCode = 404;
      res.end();
    });
    server.on('upgrade', (req, sock, head) => {
      wss.handleUpgrade(req, sock, head, (ws) => ws.send(JSON.stringify({ type: 'welcome', podId: 'socket-b', sessionId: 's1' })));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const r = await runCheck(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 3);
      assert.equal(r.code, 1, r.out);
      assert.match(r.out, /expected welcome from socket-a/);
    } finally {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
