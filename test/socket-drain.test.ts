/** Paced drain: the schedule itself, and 1,000 real clients drained over a 2 s window. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { planDrain, retryAfterMs, runDrain, shuffle } from '../socket/drain.js';
import { Client, startNode } from './socket-support.js';
import { mulberry32 } from './support/random.js';

describe('drain schedule', () => {
  test('one jittered slot per connection: ascending, inside the window, each in its own slot', () => {
    const n = 1000;
    const w = 60_000;
    const plan = planDrain(n, w, mulberry32(1));
    assert.equal(plan.length, n);
    for (let i = 0; i < n; i++) {
      assert.ok(plan[i]! >= (i * w) / n && plan[i]! < ((i + 1) * w) / n, `slot ${i}`);
      if (i > 0) assert.ok(plan[i]! >= plan[i - 1]!);
    }
    // Jittered, not periodic: gaps vary.
    const gaps = new Set(Array.from({ length: n - 1 }, (_, i) => Math.round(plan[i + 1]! - plan[i]!)));
    assert.ok(gaps.size > 20, `gaps vary (${gaps.size} distinct)`);
    assert.deepEqual(planDrain(0, w), new Float64Array(0));
    assert.ok(planDrain(5, 0).every((x) => x === 0), 'a zero window sends everything at once');
  });

  test('shuffle is a permutation; retryAfterMs is jittered within its bounds', () => {
    const items = Array.from({ length: 100 }, (_, i) => i);
    const out = shuffle([...items], mulberry32(2));
    assert.deepEqual([...out].sort((a, b) => a - b), items);
    assert.notDeepEqual(out, items);
    const r = mulberry32(3);
    const values = Array.from({ length: 500 }, () => retryAfterMs(r));
    assert.ok(values.every((v) => Number.isInteger(v) && v >= 250 && v < 2250));
    assert.ok(new Set(values).size > 100);
  });

  test('runDrain answers at the timeout with the connections still open', async () => {
    // Targets that ignore the notice (a wedged client): the drain must still answer at DRAIN_TIMEOUT_MS.
    const targets = Array.from({ length: 4 }, () => ({ open: true, notified: 0 }));
    const t0 = Date.now();
    const result = await runDrain({ targets, windowMs: 50, timeoutMs: 300, notify: (x) => void x.notified++, openConnections: () => targets.length });
    assert.deepEqual(result, { drained: 4, remaining: 4 });
    assert.ok(Date.now() - t0 >= 250);
    assert.ok(targets.every((x) => x.notified === 1), 'each target is notified once');
  });

  test('runDrain skips targets that left by themselves and ends as soon as none is open', async () => {
    const targets = Array.from({ length: 10 }, (_, i) => ({ open: i % 2 === 0 }));
    let open = 5;
    const result = await runDrain({
      targets,
      windowMs: 100,
      timeoutMs: 10_000,
      notify: (x) => {
        (x as { open: boolean }).open = false;
        open--;
      },
      openConnections: () => open,
    });
    assert.deepEqual(result, { drained: 5, remaining: 0 });
  });
});

describe('drain of 1,000 clients', () => {
  test('every client gets reconnect before close 1012, and the closes are spread over DRAIN_WINDOW_MS', async () => {
    const N = 1000;
    const WINDOW = 2000;
    const t = await startNode({ DRAIN_WINDOW_MS: String(WINDOW), HEARTBEAT_MS: '1000' });
    try {
      const clients: Client[] = [];
      for (let i = 0; i < N; i += 100) clients.push(...(await Promise.all(Array.from({ length: 100 }, () => Client.open(t.url)))));
      await Promise.all(clients.map((c) => c.json()));
      assert.equal(t.node.connections(), N);

      const t0 = performance.now();
      const res = await fetch(`${t.admin}/drain`, { method: 'POST' });
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { drained: N, remaining: 0 });
      const closes = await Promise.all(clients.map((c) => c.closed));

      for (const [i, c] of clients.entries()) {
        assert.equal(closes[i]!.code, 1012, `client ${i} close code`);
        assert.equal(c.frames.length, 2, `client ${i}: welcome then reconnect, nothing else`);
        const notice = JSON.parse(c.frames[1]!.data.toString()) as Record<string, unknown>;
        assert.equal(notice.type, 'reconnect');
        assert.equal(notice.reason, 'draining');
        assert.ok(c.frames[1]!.at <= closes[i]!.at, `client ${i}: reconnect arrived before the close`);
      }

      // Spread, not a burst: bucket the close times over the window.
      const BUCKETS = 8;
      const width = WINDOW / BUCKETS;
      const counts = new Array<number>(BUCKETS).fill(0);
      for (const c of closes) counts[Math.min(BUCKETS - 1, Math.max(0, Math.floor((c.at - t0) / width)))]!++;
      const nonEmpty = counts.filter((n) => n > 0).length;
      const largest = Math.max(...counts);
      const times = closes.map((c) => c.at - t0);
      const span = Math.max(...times) - Math.min(...times);
      const detail = `buckets of ${width} ms: ${counts.join(' ')}; span ${Math.round(span)} ms`;
      assert.ok(nonEmpty >= 5, `closes fall into several buckets (${detail})`);
      assert.ok(largest <= N * 0.4, `no bucket holds most closes (${detail})`);
      assert.ok(span >= WINDOW / 2, `closes span most of the window (${detail})`);
      const m = await (await fetch(`${t.admin}/metrics`)).text();
      assert.match(m, new RegExp(`^rtc_socket_drain_notices_total\\{role="socket"\\} ${N}$`, 'm'));
    } finally {
      await t.node.close();
    }
  });
});
