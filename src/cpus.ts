/** The CPUs this process may use: Node's availableParallelism, lowered to the cgroup's CPU quota when one is set. */
import { readFileSync } from 'node:fs';
import os from 'node:os';

/** cgroup v2 `cpu.max` ("<quota> <period>" or "max <period>"), then cgroup v1's quota and period files. */
const CGROUP_V2_CPU_MAX = '/sys/fs/cgroup/cpu.max';
const CGROUP_V1_QUOTA = '/sys/fs/cgroup/cpu/cpu.cfs_quota_us';
const CGROUP_V1_PERIOD = '/sys/fs/cgroup/cpu/cpu.cfs_period_us';

/** Whole CPUs of a quota of `quota` µs per `period` µs, rounded up; undefined when unlimited or unreadable. */
export function quotaCpus(quota: string | undefined, period: string | undefined): number | undefined {
  if (quota === undefined || period === undefined) return undefined;
  const q = Number(quota.trim());
  const p = Number(period.trim());
  // "max" (v2) and -1 (v1) mean no quota.
  if (!Number.isFinite(q) || !Number.isFinite(p) || q <= 0 || p <= 0) return undefined;
  return Math.max(1, Math.ceil(q / p));
}

/** The quota of cgroup v2 `cpu.max` text, in whole CPUs (undefined = no quota). */
export function parseCpuMax(text: string): number | undefined {
  const [quota, period] = text.trim().split(/\s+/);
  return quotaCpus(quota, period);
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** CPUs available to this process: availableParallelism(), at most the cgroup CPU limit (v2 cpu.max, else v1). */
export function availableCpus(readFile: (path: string) => string | undefined = read): number {
  const cpus = os.availableParallelism();
  const v2 = readFile(CGROUP_V2_CPU_MAX);
  const limit = v2 !== undefined ? parseCpuMax(v2) : quotaCpus(readFile(CGROUP_V1_QUOTA), readFile(CGROUP_V1_PERIOD));
  return limit === undefined ? cpus : Math.min(cpus, limit);
}
