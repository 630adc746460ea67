// The primary's message to a worker that has just exited: the channel is gone but the primary has not read its
// end yet, so isConnected() is still true and the write fails with EPIPE. Before post() took a callback, Node
// emitted that as 'error' on the Worker and the unhandled error killed the primary (CI saw it as a drain's last
// broadcast racing the workers' exits). A real cluster worker, a real closed channel.
import assert from 'node:assert/strict';
import cluster from 'node:cluster';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { post } from '../gateway/workers.js';

test('post to a worker whose channel closed under it: the failure is reported, the primary lives', { timeout: 20_000 }, async (t) => {
  const exec = join(tmpdir(), `rtc-edge-exiting-worker-${process.pid}.cjs`);
  writeFileSync(exec, 'process.exit(0);\n');
  t.after(() => rmSync(exec, { force: true }));
  cluster.setupPrimary({ exec, silent: true });
  const worker = cluster.fork();
  const errors: unknown[] = [];
  worker.on('error', (e) => errors.push(e));
  await new Promise<void>((resolve) => worker.once('online', () => resolve()));
  // Block the event loop while the worker exits, so the primary has not yet seen its channel close.
  const gone = Date.now() + 1000;
  while (Date.now() < gone) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
  assert.ok(worker.isConnected(), 'the primary has not yet read the closed channel (the race this test needs)');
  const failures = await new Promise<number>((resolve) => {
    let failed = 0;
    // More than one write: the first may still land in the socket buffer before the kernel reports the peer gone.
    for (let i = 0; i < 50; i++) post(worker, { type: 'rtc-edge:drain' }, () => failed++);
    setTimeout(() => resolve(failed), 200);
  });
  await new Promise<void>((resolve) => (worker.isDead() ? resolve() : worker.once('exit', () => resolve())));
  assert.ok(failures > 0, 'the failed send was reported to the caller');
  assert.deepEqual(errors, [], 'no error event on the Worker: a listener-less primary would have died of it');
});
