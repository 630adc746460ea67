/** `helm` for tests: the binary scripts/setup.sh builds with `go install`, and `helm template` parsed into objects. */
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const CHART = path.join(ROOT, 'helm/rtc-edge');
/** `go install` builds of helm default to Kubernetes v1.20 capabilities; render for a current cluster. */
export const HELM_KUBE_VERSION = '1.30.0';

function goBin(): string {
  try {
    return path.join(execFileSync('go', ['env', 'GOPATH'], { encoding: 'utf8' }).trim(), 'bin');
  } catch {
    return path.join(process.env.HOME ?? '/root', 'go', 'bin');
  }
}
/** The environment helm runs in (GOPATH/bin on the PATH). */
export const HELM_ENV = { ...process.env, PATH: `${goBin()}:${process.env.PATH}` };

/** Run helm in the repository root. */
export function helm(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('helm', args, { cwd: ROOT, env: HELM_ENV, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw new Error(`cannot run helm (${r.error.message}): run scripts/setup.sh, which builds it with go install`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/* eslint-disable @typescript-eslint/no-explicit-any */
/** A rendered object: plain YAML data. */
export type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }; [k: string]: any };

/** `helm template <release> <chart> --namespace <ns>` with values files and `--set`s; objects when it succeeds. */
export function renderChart(release: string, namespace: string, files: string[] = [], sets: string[] = []): { status: number | null; objects: Obj[]; stderr: string } {
  const r = helm(['template', release, CHART, '--namespace', namespace, '--kube-version', HELM_KUBE_VERSION, ...files.flatMap((f) => ['-f', f]), ...sets.flatMap((s) => ['--set', s])]);
  if (r.status !== 0) return { status: r.status, objects: [], stderr: r.stderr };
  const objects = parseAllDocuments(r.stdout).map((d) => {
    if (d.errors.length > 0) throw d.errors[0];
    return d.toJS() as Obj | null;
  }).filter((o): o is Obj => o !== null);
  return { status: 0, objects, stderr: r.stderr };
}
