/** Run a role through the real CLI (`app/cli.ts`) in its own process, as the chart runs it: its JSON log lines, stderr and exit. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import readline from 'node:readline';

/** A role process started by spawnRole. */
export interface RoleProcess {
  child: ChildProcess;
  /** The log line spawnRole waited for. */
  log: Record<string, unknown>;
  /** Every JSON log line so far (stdout). */
  lines: Record<string, unknown>[];
  /** Everything written to stderr so far. */
  stderr(): string;
  /** The exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** True until the process exits. */
  alive(): boolean;
  /** SIGKILL it if it still runs, and wait for the exit. */
  kill(): Promise<void>;
}

/** Spawn `rtc-edge <name>` with `env` over this process's environment; resolves at the log line `ready`, rejects if it exits first. */
export async function spawnRole(name: string, ready: string, env: Record<string, string>): Promise<RoleProcess> {
  // One gateway process unless a test asks for workers (test/gateway-workers.test.ts): the others judge one process's behaviour.
  const child = spawn(process.execPath, ['--import', 'tsx', 'app/cli.ts', name], { env: { ...process.env, GATEWAY_WORKERS: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  let running = true;
  void exited.then(() => (running = false));
  const lines: Record<string, unknown>[] = [];
  const log = await new Promise<Record<string, unknown>>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).on('line', (l) => {
      try {
        const rec = JSON.parse(l) as Record<string, unknown>;
        lines.push(rec);
        if (rec.msg === ready) resolve(rec);
      } catch {
        /* banner or other text */
      }
    });
    void exited.then((code) => reject(new Error(`${name} exited (${code}) before "${ready}": ${stderr}`)));
  });
  return {
    child,
    log,
    lines,
    stderr: () => stderr,
    exited,
    alive: () => running,
    async kill() {
      if (!running) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}
