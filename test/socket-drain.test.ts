/** Paced drain: the schedule itself, and 1,000 real clients drained over a 2 s window. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { planDrain, retryAfterMs, runDrain, shuffle } from '../socket/drain.js';
import { Client, startNode } from './socket-support.js';
import { mulberry32 } from './support/random.js';
import { createMemoryRegistry } from '../src/registry/index.js';
import { DRAIN_TICK_MS } from '../src/constants.js';

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

  test('runDrain ends soon after the last connection leaves by itself, however far away its slot is', async () => {
    // The case of a gateway's shutdown: its one link was closing already (the pod's 1012 in flight) when the
    // drain began, and its slot in a 60 s window may lie anywhere; the drain must not wait for that slot.
    const target = { open: true };
    let open = 1;
    setTimeout(() => {
      target.open = false;
      open = 0;
    }, 50);
    const t0 = performance.now();
    const result = await runDrain({ targets: [target], windowMs: 60_000, timeoutMs: 120_000, notify: () => assert.fail('a target that left is not notified'), openConnections: () => open, random: () => 0.99 });
    const elapsed = performance.now() - t0;
    assert.deepEqual(result, { drained: 0, remaining: 0 });
    assert.ok(elapsed < 2000, `ended ${Math.round(elapsed)} ms after the start, the connection left at 50 ms`);
  });
});

/** The free-loop probe: a timer every SAMPLE_MS; a gap of at most FREE_GAP_MS is on time; FREE_RUN on time in a row is free. */
const SAMPLE_MS = 5;
const FREE_GAP_MS = 20;
const FREE_RUN = 10;

describe('drain of 1,000 clients', () => {
  test('every client gets reconnect before close 1012, and the closes are spread over DRAIN_WINDOW_MS', async () => {
    const N = 1000;
    const WINDOW = 2000;
    // The drain writes its draining record just before its schedule starts: that moment is the schedule's origin.
    const registry = createMemoryRegistry();
    const heartbeat = registry.heartbeat.bind(registry);
    let started = NaN;
    registry.heartbeat = (pod) => {
      if (pod.draining && Number.isNaN(started)) started = performance.now();
      return heartbeat(pod);
    };
    const t = await startNode({ DRAIN_WINDOW_MS: String(WINDOW), HEARTBEAT_MS: '1000' }, { registry });
    try {
      const clients: Client[] = [];
      for (let i = 0; i < N; i += 100) clients.push(...(await Promise.all(Array.from({ length: 100 }, () => Client.open(t.url)))));
      await Promise.all(clients.map((c) => c.json()));
      assert.equal(t.node.connections(), N);

      // This process runs the node and its 1,000 clients, so on a loaded machine it sees events late, never early.
      // A 5 ms timer records when the event loop was free (see below).
      const ticks: number[] = [];
      const sampler = setInterval(() => ticks.push(performance.now()), SAMPLE_MS);
      const res = await fetch(`${t.admin}/drain`, { method: 'POST' });
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { drained: N, remaining: 0 });
      const closes = await Promise.all(clients.map((c) => c.closed));
      clearInterval(sampler);
      assert.ok(!Number.isNaN(started), 'the drain wrote a draining record');
      const t0 = started;

      for (const [i, c] of clients.entries()) {
        assert.equal(closes[i]!.code, 1012, `client ${i} close code`);
        assert.equal(c.frames.length, 2, `client ${i}: welcome then reconnect, nothing else`);
        const notice = JSON.parse(c.frames[1]!.data.toString()) as Record<string, unknown>;
        assert.equal(notice.type, 'reconnect');
        assert.equal(notice.reason, 'draining');
        assert.ok(c.frames[1]!.at <= closes[i]!.at, `client ${i}: reconnect arrived before the close`);
      }

      // Spread, not a burst. The drain gives the k-th notice (and its close) a moment in slot k of WINDOW/N ms, so
      // the k-th notice or close seen (k+1 were sent by then) comes no earlier than k slots after the drain started:
      // load cannot make that fail, a burst does. Nor may it come later than a moment, after the end of its slot and
      // a drain tick, when this process was free (its timer ran on time FREE_RUN times in a row) and would have seen
      // it: a drain that holds its notices back fails that, a loaded machine only delays the moment.
      const slot = WINDOW / N;
      const free: number[] = []; // free runs as pairs: start, end (ms after t0)
      for (let i = 1, run = 0; i < ticks.length; i++) {
        run = ticks[i]! - ticks[i - 1]! <= FREE_GAP_MS ? run + 1 : 0;
        if (run >= FREE_RUN) free.push(ticks[i - FREE_RUN]! - t0, ticks[i]! - t0);
      }
      const seenBy = (dueMs: number) => {
        for (let j = 0; j < free.length; j += 2) if (free[j]! >= dueMs) return free[j + 1]!;
        return Infinity;
      };
      const sorted = (xs: number[]) => xs.sort((a, b) => a - b);
      const notices = sorted(clients.map((c) => c.frames[1]!.at - t0));
      const closed = sorted(closes.map((c) => c.at - t0));
      const at = (xs: number[]) => [0, 0.25, 0.5, 0.75, 1].map((q) => Math.round(xs[Math.round(q * (N - 1))]!)).join('/');
      const detail = `notices at ${at(notices)} ms, closes at ${at(closed)} ms (0/25/50/75/100%), ${free.length / 2} free moments`;
      for (let k = 0; k < N; k++) {
        const due = (k + 1) * slot + DRAIN_TICK_MS;
        for (const [what, xs] of [['notice', notices], ['close', closed]] as const) {
          assert.ok(xs[k]! >= k * slot, `${what} ${k} at ${xs[k]!.toFixed(1)} ms, before its slot at ${k * slot} ms (${detail})`);
          const by = seenBy(due);
          assert.ok(xs[k]! <= by, `${what} ${k} at ${Math.round(xs[k]!)} ms, due by ${Math.round(due)} ms, not seen when free at ${Math.round(by)} ms (${detail})`);
        }
      }
      const m = await (await fetch(`${t.admin}/metrics`)).text();
      assert.match(m, new RegExp(`^rtc_socket_drain_notices_total\\{role="socket"\\} ${N}$`, 'm'));
    } finally {
      await t.node.close();
    }
  });
});

describe('drain by room', () => {
  test("a key's sessions get their reconnect notices together (one slot, one retryAfterMs); the slots spread over the window", async () => {
    const KEYS = ['room-a', 'room-b', 'room-c'];
    const PER_KEY = 10;
    const UNKEYED = 10;
    const WINDOW = 1500;
    const TOGETHER_MS = 50; // one slot is WINDOW / 13 groups ≈ 115 ms; per-client pacing spreads a room over the window
    const t = await startNode({ DRAIN_WINDOW_MS: String(WINDOW), HEARTBEAT_MS: '1000' });
    try {
      const keyed = await Promise.all(KEYS.flatMap((key) => Array.from({ length: PER_KEY }, async () => ({ key, c: await Client.open(`${t.url}?key=${key}`) }))));
      const unkeyed = await Promise.all(Array.from({ length: UNKEYED }, () => Client.open(t.url)));
      const all = [...keyed.map((k) => k.c), ...unkeyed];
      await Promise.all(all.map((c) => c.json()));
      const t0 = performance.now();
      const res = await fetch(`${t.admin}/drain`, { method: 'POST' });
      assert.deepEqual(await res.json(), { drained: all.length, remaining: 0 });
      for (const [i, c] of all.entries()) assert.equal((await c.closed).code, 1012, `client ${i} close code`);
      const notice = (c: Client) => ({ at: c.frames[1]!.at - t0, ...(JSON.parse(c.frames[1]!.data.toString()) as { type: string; retryAfterMs: number; assignUrl: string }) });

      const groupTimes: number[] = unkeyed.map((c) => notice(c).at);
      for (const key of KEYS) {
        const notices = keyed.filter((k) => k.key === key).map((k) => notice(k.c));
        assert.ok(notices.every((n) => n.type === 'reconnect' && n.assignUrl === `/ws/assign?key=${key}`));
        const ats = notices.map((n) => n.at);
        const spread = Math.max(...ats) - Math.min(...ats);
        assert.ok(spread <= TOGETHER_MS, `${key}: its ${PER_KEY} notices arrived ${spread.toFixed(1)} ms apart (at ${ats.map(Math.round).join(', ')} ms)`);
        assert.equal(new Set(notices.map((n) => n.retryAfterMs)).size, 1, `${key}: one retryAfterMs for the room`);
        groupTimes.push(Math.min(...ats));
      }
      // 13 slots (3 rooms + 10 unkeyed): the k-th group notified comes no earlier than slot k (a burst fails this).
      const slot = WINDOW / groupTimes.length;
      groupTimes.sort((x, y) => x - y);
      for (const [k, at] of groupTimes.entries()) assert.ok(at >= k * slot, `group ${k} at ${at.toFixed(1)} ms, before its slot at ${(k * slot).toFixed(0)} ms (${groupTimes.map(Math.round).join(', ')})`);
    } finally {
      await t.node.close();
    }
  });
});
