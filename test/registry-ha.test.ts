/**
 * The registry on real Redis HA under faults, with the real roles on top: two socket nodes heartbeating, a
 * gateway routing WebSockets to them, and a scaler (on the fake Kubernetes API) deciding every 100 ms.
 * - Sentinel failover: the primary is SIGKILLed; Sentinel promotes the replica.
 * - Cluster node restart: the node serving the registry's slot is SIGKILLed and started again, empty.
 * Promises checked: every pod is back in the registry within 3 heartbeats of the registry's return, the
 * gateway keeps routing from its last view meanwhile, and the scaler holds instead of scaling on missing
 * data. The gap each role saw is reported as a test diagnostic.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { DEAD_AFTER_HEARTBEATS } from '../src/constants.js';
import { createRedisRegistry, type Registry } from '../src/registry/index.js';
import { start as startScaler, type ScalerHandle } from '../scaler/index.js';
import { startFakeKubernetes } from './support/fake-k8s.js';
import { startRedisCluster, startRedisSentinel, HA_DOWN_AFTER_MS } from './support/redis-ha.js';
import { captureLogs } from './support/logs.js';
import { FAST, scalerTestConfig } from './support/scaler-session.js';
import { scalePatches } from './support/scaler-env.js';
import { startGateway } from './support/upstream.js';
import { Client, startNode, type TestNode } from './socket-support.js';

const HB = 500;
const PREFIX = 'rtc:';
const SAMPLE_MS = 100;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** When the log line `msg` was first written at or after `since` (ms), undefined if never. */
const loggedAt = (lines: Record<string, unknown>[], msg: string | RegExp, since = 0) =>
  lines.map((l) => ({ msg: String(l.msg), at: Date.parse(String(l.time)) })).find((l) => (typeof msg === 'string' ? l.msg === msg : msg.test(l.msg)) && l.at >= since)?.at;

interface Stack {
  reader: Registry;
  nodes: TestNode[];
  gw: Awaited<ReturnType<typeof startGateway>>;
  scaler: ScalerHandle;
  scalerLines: Record<string, unknown>[];
  fake: Awaited<ReturnType<typeof startFakeKubernetes>>;
  close(): Promise<void>;
}

async function startStack(url: string): Promise<Stack> {
  const fake = await startFakeKubernetes({ replicas: 2 });
  const nodes: TestNode[] = [];
  for (const name of fake.podNames()) nodes.push(await startNode({ REDIS_URL: url, HEARTBEAT_MS: String(HB), POD_NAME: name, DRAIN_WINDOW_MS: '0' }));
  const reader = createRedisRegistry({ url, prefix: PREFIX, maxBackoffMs: SAMPLE_MS });
  const gw = await startGateway({ HEARTBEAT_MS: String(HB), GATEWAY_REGISTRY_STALE_MS: '30000' }, { registry: createRedisRegistry({ url, prefix: PREFIX, maxBackoffMs: HB }) });
  const logs = captureLogs();
  const scaler = await startScaler(scalerTestConfig({ redisUrl: url, redisPrefix: PREFIX, heartbeatMs: HB }), { logger: logs.logger, kubeConfig: fake.kubeConfig('scaler-a'), admin: false, ...FAST });
  await fake.waitFor(() => scaler.isLeader(), 10_000, 'the Lease');
  return {
    reader,
    nodes,
    gw,
    scaler,
    scalerLines: logs.lines,
    fake,
    async close() {
      await scaler.close();
      await gw.gateway.close();
      await gw.registry.close();
      for (const n of nodes) await n.node.close();
      await reader.close();
      await fake.close();
    },
  };
}

/** A WebSocket through the gateway to `podId` gets the node's welcome. */
async function routes(s: Stack, podId: string): Promise<boolean> {
  try {
    const c = await Client.open(s.gw.ws(podId));
    const ok = (await c.json()).type === 'welcome';
    await c.end();
    return ok;
  } catch {
    return false;
  }
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what} not within ${timeoutMs} ms`);
    await sleep(20);
  }
}

/**
 * Run `fault` (resolving with the moment the registry is usable again) while the gateway routes and the
 * scaler ticks every SAMPLE_MS; check the three promises and report each role's gap.
 */
async function underFault(t: TestContext, s: Stack, fault: () => Promise<{ startedAt: number; backAt: number }>): Promise<void> {
  const pods = s.nodes.map((n) => n.node.podId);
  await until('both pods registered', async () => ((await s.reader.list()).length === 2 ? true : undefined), 10_000);
  for (const p of pods) assert.ok(await routes(s, p), `${p} routes before the fault`);
  await s.scaler.tick();
  assert.equal(s.scaler.lastDecision()?.action, 'steady', s.scaler.lastDecision()?.message);

  let sampling = true;
  const routing: Array<{ at: number; ok: boolean }> = [];
  const decisions: Array<{ at: number; action: string; reason: string }> = [];
  const sampler = (async () => {
    while (sampling) {
      const at = Date.now();
      const [ok] = await Promise.all([Promise.all(pods.map((p) => routes(s, p))).then((r) => r.every(Boolean)), s.scaler.tick()]);
      routing.push({ at, ok });
      const d = s.scaler.lastDecision();
      if (d) decisions.push({ at, action: d.action, reason: d.reason });
      await sleep(SAMPLE_MS);
    }
  })();

  const { startedAt, backAt } = await fault();
  // Every pod back in the registry, written after the registry returned.
  const reRegistered = await Promise.all(
    pods.map((p) => until(`${p} re-registered`, async () => {
      const rec = await s.reader.get(p);
      return rec && rec.updatedAt >= backAt ? Date.now() : undefined;
    }, 20_000)),
  );
  const lastBack = Math.max(...reRegistered);
  // The scaler holds for DEAD_AFTER_HEARTBEATS heartbeats from its own first read back, which may come after a
  // pod's re-registration (each client reconnects on its own backoff): sample until it is steady again, bounded.
  const steadyAt = await until('the scaler steady again', async () => decisions.find((d) => d.at > lastBack && d.action === 'steady')?.at, 2 * DEAD_AFTER_HEARTBEATS * HB + 5000).catch(() => undefined);
  await sleep(4 * SAMPLE_MS); // and it stays so
  sampling = false;
  await sampler;

  for (const [i, at] of reRegistered.entries()) assert.ok(at - backAt <= DEAD_AFTER_HEARTBEATS * HB, `${pods[i]} re-registered ${at - backAt} ms after the registry returned (limit ${DEAD_AFTER_HEARTBEATS} heartbeats = ${DEAD_AFTER_HEARTBEATS * HB} ms)`);
  const failed = routing.filter((r) => !r.ok);
  assert.deepEqual(failed.map((r) => r.at - startedAt), [], 'the gateway routed every pod from its last view throughout');
  const trail = () => s.scalerLines.filter((l) => Date.parse(String(l.time)) >= startedAt).map((l) => `+${Date.parse(String(l.time)) - startedAt} ms ${String(l.msg)}`).join('\n');
  assert.equal(scalePatches(s.fake).length, 0, `the scaler never scaled; its log since the fault:\n${trail()}`);
  assert.equal(s.fake.replicas(), 2);
  const during = decisions.filter((d) => d.at >= startedAt && d.at <= lastBack);
  assert.ok(during.some((d) => d.action === 'hold' && (d.reason === 'registry-unavailable' || d.reason === 'registry-stale')), `the scaler held on missing data: ${JSON.stringify(during.slice(0, 5))}`);
  assert.deepEqual(decisions.filter((d) => d.action !== 'hold' && d.action !== 'steady'), [], 'no scale decision at all');

  // The gap each role saw.
  const node = s.nodes[0]!;
  const nodeFailing = loggedAt(node.lines, 'registry heartbeat failing; still serving WebSockets, retrying every heartbeat', startedAt);
  const nodeRestored = loggedAt(node.lines, 'registry heartbeat restored', startedAt);
  const gwFailing = loggedAt(s.gw.lines, /registry failing/, startedAt);
  const gwFresh = loggedAt(s.gw.lines, /view fresh/, startedAt);
  const holds = decisions.filter((d) => d.at >= startedAt && d.action === 'hold');
  t.diagnostic(`registry usable again ${backAt - startedAt} ms after the fault`);
  t.diagnostic(`socket nodes: back in the registry ${reRegistered.map((at) => at - backAt).join(' / ')} ms after that (heartbeat ${HB} ms); node log: failing +${nodeFailing ? nodeFailing - startedAt : '–'} ms, restored +${nodeRestored ? nodeRestored - startedAt : '–'} ms`);
  t.diagnostic(`gateway: ${routing.length - failed.length}/${routing.length} routing rounds ok; view failing +${gwFailing ? gwFailing - startedAt : '–'} ms, fresh +${gwFresh ? gwFresh - startedAt : '–'} ms`);
  t.diagnostic(`scaler: held on ${holds.length} ticks from +${holds.length ? holds[0]!.at - startedAt : '–'} to +${holds.length ? holds.at(-1)!.at - startedAt : '–'} ms (${[...new Set(holds.map((h) => h.reason))].join(', ')}), then ${decisions.at(-1)?.action} from +${steadyAt ? steadyAt - startedAt : '–'} ms`);
  assert.equal(decisions.at(-1)?.action, 'steady', 'the scaler is steady again once every pod is back');
}

describe('registry on real Redis HA under faults', () => {
  test('Sentinel failover: the primary dies while socket nodes heartbeat and a gateway routes', async (t) => {
    const ha = await startRedisSentinel();
    const s = await startStack(ha.url);
    try {
      await underFault(t, s, async () => {
        const { killedAt, promotedAt } = await ha.killPrimaryAndAwaitPromotion();
        t.diagnostic(`Sentinel promoted the replica ${promotedAt - killedAt} ms after the primary died (down-after ${HA_DOWN_AFTER_MS} ms)`);
        return { startedAt: killedAt, backAt: promotedAt };
      });
    } finally {
      await s.close();
      await ha.close();
    }
  });

  test('Cluster node restart: the node serving the registry slot dies and comes back empty', async (t) => {
    const ha = await startRedisCluster();
    const s = await startStack(ha.url);
    try {
      await underFault(t, s, async () => {
        const i = await ha.nodeOf(`${PREFIX}{registry}:pods`);
        const startedAt = Date.now();
        await ha.stopNode(i);
        await sleep(HA_DOWN_AFTER_MS * 2); // the cluster marks it failed and stops serving
        await ha.startNode(i);
        const backAt = Date.now();
        t.diagnostic(`node ${i} down for ${backAt - startedAt} ms (node timeout ${HA_DOWN_AFTER_MS} ms), back empty`);
        return { startedAt, backAt };
      });
    } finally {
      await s.close();
      await ha.close();
    }
  });
});
