/**
 * A test cluster: the real control plane, the process kubelet and helm with the admin kubeconfig, plus the
 * waits and reads the chart tests share. One per test file; `close()` stops all of it.
 */
import { execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import { AppsV1Api, CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { startKubelet, type ProcessKubelet } from './kubelet.js';
import { startKubePlane, type KubePlane } from './plane.js';
import { REPO_ROOT } from './pod-spec.js';

/** The chart under test. */
export const CHART = path.join(REPO_ROOT, 'helm/rtc-edge');

/** helm from `$(go env GOPATH)/bin` (scripts/setup.sh installs it there). */
export function helmPath(): string {
  let gopath: string;
  try {
    gopath = execFileSync('go', ['env', 'GOPATH'], { encoding: 'utf8' }).trim();
  } catch {
    gopath = path.join(process.env.HOME ?? '/root', 'go');
  }
  return path.join(gopath, 'bin', 'helm');
}

/** What a helm run printed. */
export interface HelmResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** A started cluster. */
export interface TestCluster {
  plane: KubePlane;
  kubelet: ProcessKubelet;
  core: CoreV1Api;
  apps: AppsV1Api;
  /** Run helm against this cluster (async: the kubelet keeps running pods meanwhile). */
  helm(args: string[]): Promise<HelmResult>;
  /** Pods of a namespace matching a label selector, active ones only unless `all`. */
  pods(namespace: string, selector: string, all?: boolean): Promise<V1Pod[]>;
  /** Run `fn`; on failure print the plane and kubelet log tails. */
  explain<T>(fn: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** Poll `fn` until it returns something other than undefined/false. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${lastErr ? ` (last error: ${(lastErr as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Ready = the Ready condition is True. */
export const isReady = (p: V1Pod) => (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

/** Start the plane and the kubelet. */
export async function startCluster(): Promise<TestCluster> {
  const plane = await startKubePlane();
  let kubelet: ProcessKubelet;
  try {
    kubelet = await startKubelet(plane);
  } catch (err) {
    await plane.close();
    throw err;
  }
  const core = plane.kubeConfig.makeApiClient(CoreV1Api);
  const apps = plane.kubeConfig.makeApiClient(AppsV1Api);
  const helm = (args: string[]) =>
    new Promise<HelmResult>((resolve) => {
      const env = { ...process.env, KUBECONFIG: plane.kubeconfigPath, HELM_CACHE_HOME: path.join(plane.dir, 'helm-cache'), HELM_CONFIG_HOME: path.join(plane.dir, 'helm-config'), HELM_DATA_HOME: path.join(plane.dir, 'helm-data') };
      const child = spawn(helmPath(), args, { cwd: REPO_ROOT, env });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.once('error', (err) => resolve({ status: 127, stdout, stderr: `cannot run helm (${err.message}): run scripts/setup.sh` }));
      child.once('close', (status) => resolve({ status, stdout, stderr }));
    });
  return {
    plane,
    kubelet,
    core,
    apps,
    helm,
    async pods(namespace, selector, all = false) {
      const list = await core.listNamespacedPod({ namespace, labelSelector: selector });
      return list.items.filter((p) => all || !p.metadata?.deletionTimestamp);
    },
    async explain(fn) {
      return plane.explain(async () => {
        try {
          return await fn();
        } catch (err) {
          process.stderr.write(`--- kubelet log tail ---\n${kubelet.logTail(120)}\n---\n`);
          throw err;
        }
      });
    },
    async close() {
      await kubelet.close();
      await plane.close();
    },
  };
}
