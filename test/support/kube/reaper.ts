/**
 * Cleanup that survives a failing or killed test process: every process group and temp dir the kube
 * support starts is listed here; they are killed and removed on `exit`, and a detached watchdog shell
 * does the same when this process dies without running its exit handlers (SIGKILL, runner timeout).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const groups = new Set<number>();
const dirs = new Set<string>();
let listFile: string | undefined;

// Polls our pid once a second; when it is gone, SIGKILLs each listed process group and removes each dir.
const WATCHDOG = `while kill -0 "$1" 2>/dev/null; do sleep 1; done
while read -r kind value; do
  case "$kind" in pg) kill -9 -- "-$value" 2>/dev/null ;; dir) rm -rf -- "$value" ;; esac
done < "$2"
rm -f -- "$2"`;

function save(): void {
  if (!listFile) return;
  const lines = [...[...groups].map((g) => `pg ${g}`), ...[...dirs].map((d) => `dir ${d}`)];
  writeFileSync(listFile, lines.length ? `${lines.join('\n')}\n` : '');
}

function reapNow(): void {
  for (const g of groups) {
    try {
      process.kill(-g, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  groups.clear();
  dirs.clear();
  save();
}

function ensureWatchdog(): void {
  if (listFile) return;
  listFile = path.join(os.tmpdir(), `rtc-reaper-${process.pid}-${randomBytes(4).toString('hex')}`);
  writeFileSync(listFile, '');
  spawn('sh', ['-c', WATCHDOG, 'rtc-reaper', String(process.pid), listFile], { detached: true, stdio: 'ignore' }).unref();
  process.once('exit', reapNow);
}

/** Kill this process group (a child spawned with `detached: true`) if the test process ends first. */
export function guardGroup(pgid: number): void {
  ensureWatchdog();
  groups.add(pgid);
  save();
}

/** The group ended normally: forget it (its id may be reused). */
export function releaseGroup(pgid: number): void {
  if (groups.delete(pgid)) save();
}

/** Remove this dir if the test process ends first. */
export function guardDir(dir: string): void {
  ensureWatchdog();
  dirs.add(dir);
  save();
}

/** The dir was removed normally. */
export function releaseDir(dir: string): void {
  if (dirs.delete(dir)) save();
}
