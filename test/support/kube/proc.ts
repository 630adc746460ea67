/** A child process in its own process group, its output prefixed into a log, reaped if the test process dies. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Writable } from 'node:stream';
import { guardGroup, releaseGroup } from './reaper.js';

/** How a process ended. */
export interface ProcExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A started process. */
export interface Proc {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  readonly exited: Promise<ProcExit>;
  running(): boolean;
  /** Signal the whole process group (a shell's children too). */
  signal(sig: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  stop(graceMs?: number): Promise<ProcExit>;
}

/** Options of `startProc`. */
export interface ProcOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Every output line goes here as `[name] line`. */
  log: Writable;
  /** Also called with each output line (unprefixed). */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
}

/** Spawn `cmd args` detached (own process group) with stdout/stderr piped line by line into `opts.log`. */
export function startProc(name: string, cmd: string, args: readonly string[], opts: ProcOptions): Proc {
  const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let done: ProcExit | undefined;
  const exited = new Promise<ProcExit>((resolve) => {
    child.once('error', (err) => {
      opts.log.write(`[${name}] cannot start ${cmd}: ${err.message}\n`);
      done = { code: 127, signal: null };
      resolve(done);
    });
    child.once('exit', (code, signal) => {
      done = { code, signal };
      if (child.pid) releaseGroup(child.pid);
      opts.log.write(`[${name}] exited (${signal ?? `code ${code}`})\n`);
      resolve(done);
    });
  });
  if (child.pid) guardGroup(child.pid);
  for (const [stream, src] of [['stdout', child.stdout], ['stderr', child.stderr]] as const) {
    createInterface({ input: src }).on('line', (line) => {
      opts.log.write(`[${name}] ${line}\n`);
      opts.onLine?.(line, stream);
    });
  }
  const signal = (sig: NodeJS.Signals) => {
    if (done || !child.pid) return;
    try {
      process.kill(-child.pid, sig);
    } catch {
      // the group is gone already
    }
  };
  return {
    name,
    pid: child.pid ?? -1,
    child,
    exited,
    running: () => !done,
    signal,
    async stop(graceMs = 5000) {
      if (done) return done;
      signal('SIGTERM');
      const timer = setTimeout(() => signal('SIGKILL'), graceMs);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
}
