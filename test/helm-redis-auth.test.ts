/**
 * The bundled Redis password on a REAL API server (test/support/kube/plane.ts): `helm install` generates it into
 * a Secret, `helm upgrade` keeps it (the template's `lookup`), while an offline render makes a new one each time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CoreV1Api } from '@kubernetes/client-node';
import { CHART, helm, renderChart } from './support/helm.js';
import { startKubePlane } from './support/kube/plane.js';

const NS = 'rtc';
const RELEASE = 'rtc-edge';
const KEY = 'redis-password';

test('helm install generates the Redis password into a Secret and helm upgrade keeps it', async (t) => {
  const plane = await startKubePlane();
  t.after(() => plane.close());
  const core = plane.kubeConfig.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: NS } } });
  const run = (verb: 'install' | 'upgrade', ...sets: string[]) => {
    const r = helm([verb, RELEASE, CHART, '--namespace', NS, '--kubeconfig', plane.kubeconfigPath, ...sets.flatMap((s) => ['--set', s])]);
    assert.equal(r.status, 0, `helm ${verb}: ${r.stderr}`);
  };
  const password = async () => {
    const secret = await core.readNamespacedSecret({ name: `${RELEASE}-redis-auth`, namespace: NS });
    return Buffer.from(secret.data?.[KEY] ?? '', 'base64').toString('utf8');
  };
  await plane.explain(async () => {
    run('install');
    const first = await password();
    assert.match(first, /^[A-Za-z0-9]{32}$/);
    run('upgrade', 'config.LOG_LEVEL=debug');
    assert.equal(await password(), first, 'kept across an upgrade');
    run('upgrade', 'gateway.replicaCount=3');
    assert.equal(await password(), first, 'kept across a second upgrade');
    const offline = renderChart(RELEASE, NS).objects.find((o) => o.kind === 'Secret' && o.metadata.name === `${RELEASE}-redis-auth`);
    assert.match(offline?.stringData?.[KEY] ?? '', /^[A-Za-z0-9]{32}$/);
    assert.notEqual(offline!.stringData[KEY], first, 'without a cluster there is nothing to look up: lookup is what keeps it');
  });
});
