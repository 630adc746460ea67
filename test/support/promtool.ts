/** `promtool` for tests: the binary scripts/setup.sh builds with `go install` (next to helm, in GOPATH/bin). */
import { spawnSync } from 'node:child_process';
import { HELM_ENV, ROOT } from './helm.js';

/** Run promtool in `cwd` (default the repository root) with `input` on stdin. */
export function promtool(args: string[], cwd = ROOT, input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('promtool', args, { cwd, env: HELM_ENV, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...(input !== undefined ? { input } : {}) });
  if (r.error) throw new Error(`cannot run promtool (${r.error.message}): run scripts/setup.sh, which builds it with go install`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
