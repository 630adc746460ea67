/** A realistic recorded scaler session; writes artifacts/scaler-api-calls.json for the Helm chart's RBAC test. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { VICTIM_DELETION_COST } from '../scaler/constants.js';
import { SCALER_API_CALLS_ARTIFACT, runRecordedScalerSession } from './support/scaler-session.js';

test('recorded session: leader election, scale-out, scale-in retiring the least-loaded pod, failover; RBAC verbs used', async () => {
  const s = await runRecordedScalerSession({ write: true });

  assert.equal(s.removed.connections, 40, `the scaler retired the least-loaded pod (40 connections), not ${s.removed.pod}`);
  assert.equal(s.costsWritten[s.removed.pod], String(VICTIM_DELETION_COST), 'the cordoned victim carries the lowest cost');
  assert.deepEqual(Object.values(s.costsWritten).sort(), [String(VICTIM_DELETION_COST), '350', '500', '700']);
  assert.ok(s.messages.includes('Scaling Deployment socket from 2 to 4 replicas'));
  assert.ok(s.messages.includes('✓ Successfully scaled Deployment socket to 4 replicas'));
  assert.ok(s.messages.includes('Scaling Deployment socket from 4 to 3 replicas'));
  assert.ok(s.messages.includes('Scaling Deployment socket from 3 to 5 replicas'));
  assert.ok(s.messages.some((m) => m.startsWith(`scale-in removed pod ${s.removed.pod} with 40 connections: the cordoned pod, as intended`)));

  // The standby never wrote anything but the Lease while scaler-a led.
  const writesByB = s.requests.filter((r) => r.user === 'scaler-b' && r.resource !== 'leases' && ['patch', 'update', 'create'].includes(r.verb));
  assert.ok(writesByB.every((r) => r.resource === 'deployments' && r.subresource === 'scale'), 'scaler-b only scaled after taking over');
  assert.ok(writesByB.length >= 1);

  assert.deepEqual(s.verbs, [
    { apiGroup: '', resource: 'pods', verb: 'list' },
    { apiGroup: '', resource: 'pods', verb: 'patch' },
    { apiGroup: '', resource: 'pods', verb: 'watch' },
    { apiGroup: 'apps', resource: 'deployments', verb: 'get' },
    { apiGroup: 'apps', resource: 'deployments/scale', verb: 'get' },
    { apiGroup: 'apps', resource: 'deployments/scale', verb: 'patch' },
    { apiGroup: 'coordination.k8s.io', resource: 'leases', verb: 'create' },
    { apiGroup: 'coordination.k8s.io', resource: 'leases', verb: 'get' },
    { apiGroup: 'coordination.k8s.io', resource: 'leases', verb: 'update' },
  ]);
  const artifact = JSON.parse(await readFile(SCALER_API_CALLS_ARTIFACT, 'utf8')) as { verbs: unknown[]; requests: unknown[] };
  assert.deepEqual(artifact.verbs, s.verbs);
  assert.equal(artifact.requests.length, s.requests.length);
});
