/** Probes and lifecycle hooks of the process kubelet: httpGet, tcpSocket and exec against a pod's loopback ports. */
import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import type { V1LifecycleHandler, V1Probe } from '@kubernetes/client-node';
import { loopbackPort, substitutePort, type PodPorts } from './pod-spec.js';

/** An action of a probe or hook. */
type Action = Pick<V1Probe, 'httpGet' | 'tcpSocket' | 'exec'> & Pick<V1LifecycleHandler, 'sleep'>;

function httpGet(port: number, path: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 400));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

function tcp(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port, timeout: timeoutMs });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('timeout', () => (s.destroy(), resolve(false)));
    s.once('error', () => resolve(false));
  });
}

function exec(command: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn(command[0]!, command.slice(1), { env, stdio: 'ignore', timeout: timeoutMs });
    child.once('error', () => resolve(false));
    child.once('exit', (code) => resolve(code === 0));
  });
}

/** Run one probe or hook action; true = success. `timeoutMs` bounds it. */
export async function runAction(action: Action, ports: PodPorts, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<boolean> {
  if (action.httpGet) return httpGet(loopbackPort(ports, action.httpGet.port as number | string), action.httpGet.path ?? '/', timeoutMs);
  if (action.tcpSocket) return tcp(loopbackPort(ports, action.tcpSocket.port as number | string), timeoutMs);
  if (action.exec?.command) return exec(action.exec.command.map((a) => substitutePort(ports, a)), env, timeoutMs);
  if (action.sleep) {
    await new Promise((r) => setTimeout(r, Math.min(timeoutMs, action.sleep!.seconds * 1000)));
    return true;
  }
  throw new Error('a probe or hook needs httpGet, tcpSocket, exec or sleep');
}

/** Runs a probe every periodSeconds and reports its state after failureThreshold failures / successThreshold successes. */
export class Prober {
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private successes = 0;
  private stopped = false;
  /** Current verdict (readiness starts false, liveness starts true). */
  ok: boolean;

  constructor(
    private readonly probe: V1Probe,
    private readonly ports: PodPorts,
    private readonly env: NodeJS.ProcessEnv,
    initial: boolean,
    private readonly onChange: (ok: boolean) => void,
  ) {
    this.ok = initial;
    this.timer = setTimeout(() => void this.run(), (probe.initialDelaySeconds ?? 0) * 1000);
  }

  private async run(): Promise<void> {
    const timeoutMs = (this.probe.timeoutSeconds ?? 1) * 1000;
    const success = await runAction(this.probe, this.ports, this.env, timeoutMs).catch(() => false);
    if (this.stopped) return;
    if (success) {
      this.failures = 0;
      this.successes++;
      if (!this.ok && this.successes >= (this.probe.successThreshold ?? 1)) this.set(true);
    } else {
      this.successes = 0;
      this.failures++;
      if (this.ok && this.failures >= (this.probe.failureThreshold ?? 3)) this.set(false);
    }
    this.timer = setTimeout(() => void this.run(), (this.probe.periodSeconds ?? 10) * 1000);
  }

  private set(ok: boolean): void {
    this.ok = ok;
    this.onChange(ok);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
