/** Heartbeat mechanics against a registry whose availability the test controls (a memory registry underneath). */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { createMemoryRegistry, type PodRecord, type Registry, type RegistryStatus } from '../src/registry/index.js';
import { createMetricsRegistry } from '../src/metrics.js';
import { createHeartbeat } from '../socket/heartbeat.js';
import { createSocketMetrics } from '../socket/metrics.js';
import { waitFor } from './socket-support.js';
import { captureLogs } from './support/logs.js';

type Mode = 'up' | 'down' | 'hang';

/** A memory registry behind a switch: `down` rejects like ioredis without a connection, `hang` never answers. */
function switchable(): { registry: Registry; inner: Registry; set(mode: Mode, status?: RegistryStatus): void; writes: PodRecord[] } {
  const inner = createMemoryRegistry();
  const bus = new EventEmitter();
  let mode: Mode = 'up';
  let status: RegistryStatus = 'ready';
  const writes: PodRecord[] = [];
  const registry: Registry = {
    ...inner,
    async heartbeat(pod) {
      if (mode === 'down') throw new Error("Stream isn't writeable");
      if (mode === 'hang') return new Promise<void>(() => undefined);
      await new Promise((r) => setTimeout(r, 5)); // a round-trip
      writes.push({ ...pod });
      return inner.heartbeat(pod);
    },
    status: () => status,
    onStatus(listener) {
      bus.on('status', listener);
      return () => bus.off('status', listener);
    },
  };
  return {
    registry,
    inner,
    writes,
    set(m, s) {
      mode = m;
      if (s && s !== status) {
        status = s;
        bus.emit('status', s);
      }
    },
  };
}

function setup(intervalMs: number) {
  const sw = switchable();
  const { logger, lines } = captureLogs();
  const metrics = createSocketMetrics(createMetricsRegistry('socket', false), { connections: () => 0, draining: () => false, registryUp: () => true });
  const state = { draining: false, n: 0 };
  const record = (): PodRecord => ({ podId: 'hb', ip: '127.0.0.1', port: 1, adminPort: 2, connections: state.n, draining: state.draining, startedAt: 0, updatedAt: Date.now(), heartbeatMs: intervalMs });
  const hb = createHeartbeat({ registry: sw.registry, intervalMs, record, logger, metrics });
  return { sw, lines, state, hb };
}

describe('heartbeat', () => {
  test('beats at once when the registry reports ready again, not on the next (far) timer tick', async () => {
    const { sw, lines, hb } = setup(60_000);
    try {
      assert.equal(await hb.beat(), true);
      sw.set('down', 'down');
      assert.equal(await hb.beat(), false);
      assert.equal(await hb.beat(), false);
      const before = sw.writes.length;
      sw.set('up', 'ready');
      await waitFor(() => sw.writes.length > before, 1000, 5);
      assert.equal(hb.healthy, true);
      assert.equal(lines.filter((l) => l.msg === 'registry heartbeat failing; still serving WebSockets, retrying every heartbeat').length, 1);
      assert.equal(lines.filter((l) => l.msg === 'registry heartbeat restored').length, 1);
    } finally {
      await hb.stop();
    }
  });

  test('a beat asked for while one is in flight runs again with a fresh record (drain sets draining first)', async () => {
    const { sw, state, hb } = setup(60_000);
    try {
      const first = hb.beat();
      state.draining = true;
      state.n = 7;
      const second = hb.beat();
      const third = hb.beat();
      assert.equal(second, third, 'requests during a beat share one follow-up beat');
      assert.deepEqual(await Promise.all([first, second]), [true, true]);
      assert.equal(sw.writes.length, 2);
      assert.deepEqual([sw.writes[1]!.draining, sw.writes[1]!.connections], [true, 7]);
      assert.equal((await sw.inner.get('hb'))?.draining, true);
    } finally {
      await hb.stop();
    }
  });

  test('a hung registry call is abandoned after one interval; the timer keeps beating; stop() waits for a beat in flight', async () => {
    const { sw, hb, lines } = setup(100);
    sw.set('hang');
    const t0 = Date.now();
    assert.equal(await hb.beat(), false);
    assert.ok(Date.now() - t0 >= 90);
    sw.set('up');
    await waitFor(() => sw.writes.length > 0, 2000, 5);
    assert.match(String((lines.find((l) => l.msg?.toString().startsWith('registry heartbeat failing'))?.err as { message?: string })?.message), /timed out after 100 ms/);
    const inFlight = hb.beat();
    await hb.stop();
    assert.equal(await inFlight, true, 'stop() returned only after the beat in flight finished');
    const n = sw.writes.length;
    await new Promise((r) => setTimeout(r, 250));
    assert.equal(sw.writes.length, n, 'no beat after stop()');
    assert.equal(await hb.beat(), false);
  });
});
