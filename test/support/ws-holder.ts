/**
 * A child process that holds many real `ws` client connections, so that a test can hold more than one process's
 * descriptor limit of them (fork it several times). Commands arrive over the IPC channel; see HolderCommand.
 * Run it through `startHolder()`.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

/** What the parent asks a holder. */
export type HolderCommand =
  | { cmd: 'open'; url: string; count: number; concurrency: number }
  | { cmd: 'status' }
  | { cmd: 'ping'; sample: number; timeoutMs: number };

/** Counts a holder reports back. */
export interface HolderStatus {
  open: number;
  closed: number;
  failed: number;
  /** Close codes seen so far, and failure reasons. */
  closeCodes: Record<string, number>;
  failures: Record<string, number>;
  /** `ping`: open connections sampled and how many answered with a pong. */
  pinged?: number;
  ponged?: number;
}

/** A forked holder process. */
export interface Holder {
  send(command: HolderCommand): Promise<HolderStatus>;
  stop(): Promise<void>;
}

/** Fork a holder (Node with tsx, IPC). */
export async function startHolder(): Promise<Holder> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--child'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await once(child, 'spawn');
  let queue = Promise.resolve<unknown>(undefined);
  return {
    send(command) {
      const next = queue.then(() => new Promise<HolderStatus>((resolve, reject) => {
        const onExit = (code: number | null) => reject(new Error(`holder exited (${code}) during ${command.cmd}`));
        child.once('exit', onExit);
        child.once('message', (m) => {
          child.off('exit', onExit);
          resolve(m as HolderStatus);
        });
        child.send(command);
      }));
      queue = next.catch(() => undefined);
      return next;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await once(child, 'exit');
    },
  };
}

function runChild(): void {
  const open = new Set<WebSocket>();
  const status: HolderStatus = { open: 0, closed: 0, failed: 0, closeCodes: {}, failures: {} };
  const bump = (m: Record<string, number>, k: string) => (m[k] = (m[k] ?? 0) + 1);
  const snapshot = (): HolderStatus => ({ ...status, open: open.size, closeCodes: { ...status.closeCodes }, failures: { ...status.failures } });

  const openOne = (url: string) => new Promise<void>((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    let opened = false;
    ws.on('error', (err: NodeJS.ErrnoException) => {
      if (!opened) bump(status.failures, err.code ?? err.message.slice(0, 60));
    });
    ws.on('unexpected-response', (_req, res) => {
      bump(status.failures, `http ${res.statusCode}`);
      ws.terminate();
    });
    ws.once('open', () => {
      opened = true;
      open.add(ws);
      resolve();
    });
    ws.once('close', (code: number) => {
      if (opened) {
        open.delete(ws);
        status.closed++;
        bump(status.closeCodes, String(code));
      } else {
        status.failed++;
        resolve();
      }
    });
  });

  const ping = async (sample: number, timeoutMs: number) => {
    const picked = [...open].slice(0, sample);
    const answers = await Promise.all(picked.map((ws) => new Promise<boolean>((resolve) => {
      const t = Date.now();
      const timer = setTimeout(() => done(false), timeoutMs);
      function done(ok: boolean) {
        clearTimeout(timer);
        ws.off('message', onMessage);
        resolve(ok);
      }
      function onMessage(data: Buffer) {
        let m: { type?: string; t?: number } = {};
        try {
          m = JSON.parse(data.toString()) as typeof m;
        } catch {
          // Not JSON: not the pong.
        }
        if (m.type === 'pong' && m.t === t) done(true);
      }
      ws.on('message', onMessage);
      ws.send(JSON.stringify({ type: 'ping', t }));
    })));
    return { pinged: picked.length, ponged: answers.filter(Boolean).length };
  };

  process.on('message', (c: HolderCommand) => {
    void (async () => {
      if (c.cmd === 'open') {
        let next = 0;
        await Promise.all(Array.from({ length: c.concurrency }, async () => {
          while (next < c.count) {
            next++;
            await openOne(c.url);
          }
        }));
        process.send!(snapshot());
      } else if (c.cmd === 'status') process.send!(snapshot());
      else process.send!({ ...snapshot(), ...(await ping(c.sample, c.timeoutMs)) });
    })();
  });
  process.on('disconnect', () => process.exit(0));
}

if (process.argv.includes('--child')) runChild();
