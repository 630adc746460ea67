/** `rtc-edge status` against a real gateway whose memory registry holds heartbeats, a scaler decision and events. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createMemoryRegistry } from '../src/registry/index.js';
import type { Registry } from '../src/registry/registry.js';
import { renderStatus, runStatus } from '../app/status-cli.js';
import { start as startGateway } from '../gateway/index.js';

const HEARTBEAT_MS = 60_000; // records stay live for the whole test without re-beating

/** A role gateway (two ports); `url` is its admin port, the one `rtc-edge status` reads. */
async function gatewayWith(registry: Registry) {
  const config = loadConfig({ GATEWAY_PORT: '0', GATEWAY_ADMIN_PORT: '0', HEARTBEAT_MS: String(HEARTBEAT_MS), LOG_LEVEL: 'silent' }, 'gateway');
  const gw = await startGateway(config, { logger: createLogger('silent'), registry, host: '127.0.0.1' });
  return { gw, url: `http://127.0.0.1:${gw.adminPort}`, clientUrl: `http://127.0.0.1:${gw.port}` };
}

async function seed(registry: Registry, t: number): Promise<void> {
  const pod = (podId: string, port: number, connections: number, draining: boolean, age: number) =>
    registry.heartbeat({ podId, ip: '127.0.0.1', port, adminPort: port + 1, connections, draining, startedAt: t - age, updatedAt: t, heartbeatMs: HEARTBEAT_MS });
  await pod('socket-bbbbb', 41000, 7, false, 65_000);
  await pod('socket-aaaaa', 42000, 31, false, 5_000);
  await pod('socket-ccccc', 43000, 2, true, 3_700_000);
  await registry.cordon('socket-bbbbb', {}, 60_000);
  // Placement keys: two rooms on the busiest pod, one on the cordoned one.
  await registry.claim('room-1', 'socket-aaaaa', 60_000);
  await registry.claim('room-2', 'socket-aaaaa', 60_000);
  await registry.claim('room-3', 'socket-bbbbb', 60_000);
  await registry.setScalerDecision({ desiredReplicas: 2, currentReplicas: 3, reason: 'scale in 3 → 2: 40 connections need 2 pods', at: t, deletionCosts: { 'socket-aaaaa': 31, 'socket-bbbbb': 7, 'socket-ccccc': 2 }, victims: ['socket-bbbbb'] });
  await registry.pushEvent({ at: t - 2000, kind: 'scale-out', message: 'scale out 2 → 3: 60 connections need 3 pods at 20 per pod' });
  await registry.pushEvent({ at: t - 1000, kind: 'drain-start', message: 'draining 2 connections over 1000 ms', podId: 'socket-ccccc' });
}

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let buf = '';
  stream.on('data', (d: Buffer) => (buf += d.toString()));
  return { stream, text: () => buf };
}

test('status prints the pods (busiest first, address, state, deletion cost, age), replicas and the last events', async () => {
  const registry = createMemoryRegistry();
  // Seeded first: the scaler decision reaches /api/pods with the gateway view's sync (every HEARTBEAT_MS).
  await seed(registry, Date.now());
  const { gw, url } = await gatewayWith(registry);
  try {
    const out = capture();
    const err = capture();
    const code = await runStatus({ url, watch: false, intervalMs: 1000, out: out.stream, err: err.stream });
    assert.equal(code, 0, err.text());
    const lines = out.text().split('\n');
    assert.match(lines[0]!, new RegExp(`^rtc-edge status · ${url} · `));
    assert.equal(lines[1], 'pods 3 live (1 draining, 1 cordoned) · desired 2 · workload 3 · connections 40 · keys 3 · scale in 3 → 2: 40 connections need 2 pods');
    const header = lines.findIndex((l) => l.startsWith('POD'));
    assert.match(lines[header]!, /^POD\s+ADDRESS\s+CONNS\s+KEYS\s+STATE\s+DEL-COST\s+AGE$/);
    const rows = lines.slice(header + 1, header + 4).map((l) => l.split(/\s+/));
    assert.deepEqual(rows.map((r) => r.slice(0, 6)), [
      ['socket-aaaaa', '127.0.0.1:42000', '31', '2', 'serving', '31'],
      ['socket-bbbbb', '127.0.0.1:41000', '7', '1', 'cordoned/victim', '7'],
      ['socket-ccccc', '127.0.0.1:43000', '2', '0', 'draining', '2'],
    ]);
    assert.match(rows[0]![6]!, /^[5-9]s$/);
    assert.match(rows[1]![6]!, /^1m0[5-9]s$/);
    assert.match(rows[2]![6]!, /^1h01m$/);
    const events = lines.slice(lines.findIndex((l) => l.startsWith('last 2 events')) + 1).filter(Boolean);
    assert.equal(events.length, 2);
    assert.match(events[0]!, /^\d\d:\d\d:\d\d {2}drain-start {3}draining 2 connections over 1000 ms \(socket-ccccc\)$/);
    assert.match(events[1]!, /scale-out +scale out 2 → 3/);
  } finally {
    await gw.close();
    await registry.close();
  }
});

test('status --key names the owner of a placement key (exit 0), says nobody owns an unclaimed one (exit 3), and refuses a malformed key or --watch', async () => {
  const registry = createMemoryRegistry();
  await seed(registry, Date.now());
  const { gw, url, clientUrl } = await gatewayWith(registry);
  try {
    const run = async (key: string, extra: { url?: string; watch?: boolean } = {}) => {
      const out = capture();
      const err = capture();
      const code = await runStatus({ url: extra.url ?? url, watch: extra.watch ?? false, intervalMs: 1000, out: out.stream, err: err.stream, key });
      return { code, out: out.text(), err: err.text() };
    };
    const owned = await run('room-3');
    assert.equal(owned.code, 0, owned.err);
    assert.equal(owned.out, 'room-3 → socket-bbbbb (cordoned, 7 connections, 1 keys) · /ws/socket-bbbbb/connect?key=room-3\n');
    const nobody = await run('room-9');
    assert.equal(nobody.code, 3, nobody.err);
    assert.equal(nobody.out, 'nobody owns "room-9" (no client of it is connected)\n');
    const bad = await run('x'.repeat(1000));
    assert.equal(bad.code, 1);
    assert.match(bad.err, /answered 400 invalid_key/);
    const client = await run('room-3', { url: clientUrl });
    assert.equal(client.code, 1);
    assert.match(client.err, /answered 404 not_found \(is this the gateway's client port\?/);
    const watching = await run('room-3', { watch: true });
    assert.equal(watching.code, 2);
    assert.match(watching.err, /--key looks up one key once/);
  } finally {
    await gw.close();
    await registry.close();
  }
});

test('status with an empty registry says so; an unreachable gateway exits 1, a bad URL or interval exits 2', async () => {
  const registry = createMemoryRegistry();
  const { gw, url } = await gatewayWith(registry);
  const out = capture();
  const err = capture();
  try {
    assert.equal(await runStatus({ url, watch: false, intervalMs: 1000, out: out.stream, err: err.stream }), 0);
    assert.match(out.text(), /pods 0 live \(0 draining\) · desired n\/a \(no scaler has reported\) · connections 0/);
    assert.match(out.text(), /no live socket pods/);
    assert.match(out.text(), /last 0 events: none yet/);
  } finally {
    await gw.close();
    await registry.close();
  }
  // A port nothing listens on (a fresh origin, so no pooled keep-alive socket is reused).
  const closed = http.createServer();
  closed.listen(0, '127.0.0.1');
  await once(closed, 'listening');
  const deadUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
  await new Promise((r) => closed.close(r));
  assert.equal(await runStatus({ url: deadUrl, watch: false, intervalMs: 1000, out: out.stream, err: err.stream }), 1);
  assert.match(err.text(), new RegExp(`cannot read ${deadUrl}: connect ECONNREFUSED`));
  assert.equal(await runStatus({ url: 'ftp://x', watch: false, intervalMs: 1000, out: out.stream, err: err.stream }), 2);
  assert.equal(await runStatus({ url, watch: true, intervalMs: 5, out: out.stream, err: err.stream }), 2);
  assert.match(err.text(), /--interval must be/);
});

test("status pointed at a gateway's client-facing port says to use the admin port", async () => {
  const registry = createMemoryRegistry();
  const { gw, clientUrl } = await gatewayWith(registry);
  const err = capture();
  try {
    assert.equal(await runStatus({ url: clientUrl, watch: false, intervalMs: 1000, out: new PassThrough(), err: err.stream }), 1);
    assert.match(err.text(), /answered 404 not_found: .*client port\? --url needs the admin port, GATEWAY_ADMIN_PORT, default 9090/);
  } finally {
    await gw.close();
    await registry.close();
  }
});

test('status against something that is not a gateway names the problem', async () => {
  const server = http.createServer((req, res) => {
    if (req.url === '/api/pods') res.writeHead(200, { 'content-type': 'text/html' }).end('<html>hello</html>');
    else res.writeHead(500).end('boom');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const err = capture();
  try {
    assert.equal(await runStatus({ url, watch: false, intervalMs: 1000, out: new PassThrough(), err: err.stream }), 1);
    assert.match(err.text(), /did not answer JSON \(is this an rtc-edge gateway\?\)/);
  } finally {
    server.close();
  }
});

test('renderStatus is pure: IPv6 addresses are bracketed and missing optional fields render as "-"', () => {
  const text = renderStatus('http://gw', { pods: [{ podId: 'p', ip: 'fd00::1', port: 8080, connections: 1, draining: false }], desiredReplicas: 3 }, null, 0);
  assert.match(text, /\np\s+\[fd00::1\]:8080\s+1\s+serving\s+-\s+-\n/);
  assert.match(text, /events: unavailable/);
});

test('the CLI (`rtc-edge status --watch`) redraws until SIGINT and exits 0', async () => {
  const registry = createMemoryRegistry();
  const { gw, url } = await gatewayWith(registry);
  const child = spawn(process.execPath, ['--import', 'tsx', 'app/cli.ts', 'status', '--url', url, '--watch', '--interval', '200'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const frames = () => out.split('rtc-edge status · ').length - 1;
  try {
    await seed(registry, Date.now());
    const deadline = Date.now() + 20_000;
    while (frames() < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(frames() >= 2, `expected two frames, got:\n${out}`);
    // A pod that appears between frames shows up in a later frame.
    await registry.heartbeat({ podId: 'socket-ddddd', ip: '127.0.0.1', port: 44000, connections: 3, draining: false, startedAt: Date.now(), updatedAt: Date.now(), heartbeatMs: HEARTBEAT_MS });
    const seen = frames();
    while (!(frames() > seen && out.slice(out.lastIndexOf('rtc-edge status · ')).includes('socket-ddddd')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(out.slice(out.lastIndexOf('rtc-edge status · ')).includes('socket-ddddd'), 'the new pod appears in a later frame');
    child.kill('SIGINT');
    const [code] = await once(child, 'exit');
    assert.equal(code, 0);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await gw.close();
    await registry.close();
  }
});
