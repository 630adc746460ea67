/**
 * A scaler test environment: the fake Kubernetes API server, a registry with heartbeats for the fake's pods,
 * captured logs, and a started scaler that holds the Lease. On a scale-in the fake deletes the pods the
 * scaler retired (`removeRetired`); a test that wants another answer sets `fake.onScaleIn`. Shared by the
 * scaler-kubernetes and scaler-faults tests.
 */
import type { Config } from '../../src/config.js';
import { createMemoryRegistry } from '../../src/registry/memory.js';
import type { Registry } from '../../src/registry/registry.js';
import { start, type ScalerDeps, type ScalerHandle } from '../../scaler/index.js';
import { startFakeKubernetes, type FakeK8sOptions, type FakeKubernetes } from './fake-k8s.js';
import { captureLogs, type LogCapture } from './logs.js';
import { FAST, removeRetired, scalerTestConfig, startHeartbeats, type Heartbeats } from './scaler-session.js';

/** What `startScalerEnv` started; `close()` stops all of it. */
export interface ScalerEnv {
  fake: FakeKubernetes;
  registry: Registry;
  hb: Heartbeats;
  logs: LogCapture;
  scaler: ScalerHandle;
  close(): Promise<void>;
}

/** How `startScalerEnv` sets up the registry side. */
export interface ScalerEnvOptions {
  /** The registry the heartbeats go to and the scaler reads (a fresh memory registry unless given). */
  registry?: Registry;
  /** Let the first heartbeat round fail (a registry that is about to go down); otherwise a failure fails the setup. */
  firstBeatMayFail?: boolean;
}

/** Start the fake API server with `fakeOpts`, write one heartbeat round, start a scaler (test config + `cfg`, FAST + `deps`) and wait until it leads. */
export async function startScalerEnv(fakeOpts: FakeK8sOptions, cfg: Partial<Config> = {}, deps: Partial<ScalerDeps> = {}, opts: ScalerEnvOptions = {}): Promise<ScalerEnv> {
  const fake = await startFakeKubernetes(fakeOpts);
  const registry = opts.registry ?? createMemoryRegistry();
  fake.onScaleIn = removeRetired(registry);
  const hb = startHeartbeats(registry, fake);
  const logs = captureLogs();
  if (opts.firstBeatMayFail) await hb.beat().catch(() => undefined);
  else await hb.beat();
  const scaler = await start(scalerTestConfig(cfg), { logger: logs.logger, registry, kubeConfig: fake.kubeConfig('scaler-a'), admin: false, ...FAST, ...deps });
  await fake.waitFor(() => scaler.isLeader(), 5000, 'the Lease');
  return {
    fake,
    registry,
    hb,
    logs,
    scaler,
    async close() {
      hb.stop();
      await scaler.close();
      await registry.close();
      await fake.close();
    },
  };
}

/** The value of the first sample of `name` whose labels contain `labels` in the scaler's /metrics text (0 if none). */
export async function scalerMetric(s: ScalerHandle, name: string, labels = ''): Promise<number> {
  const text = await s.metrics.registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** The scale subresource patches the fake API server saw. */
export const scalePatches = (fake: FakeKubernetes) => fake.requests.filter((r) => r.subresource === 'scale' && r.verb === 'patch');
