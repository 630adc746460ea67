/**
 * Leader election with a coordination.k8s.io/v1 Lease, the client-go algorithm: a candidate takes the Lease
 * when it is free or its holder has not renewed it for leaseDurationSeconds (measured on the local clock
 * from when this replica last saw it change, so clock skew does not matter); the holder renews every retry
 * period and stops acting at once when a renewal finds another holder or no renewal succeeded within the
 * renew deadline. RBAC: leases get, create, update.
 */
import { CoordinationV1Api, KubeConfig, V1MicroTime, type V1Lease } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { LEASE_DURATION_MS, LEASE_RENEW_DEADLINE_MS, LEASE_RETRY_JITTER, LEASE_RETRY_PERIOD_MS } from './constants.js';
import { KubeCaller, apiMessage, callOptions, statusOf, timeMs, type CallSpec } from './kube.js';
import { LeadershipLost, type LeaderElector } from './leadership.js';
import type { ScalerMetrics } from './metrics.js';

export { alwaysLeader, isLeadershipLost, LeadershipLost, type LeaderElector } from './leadership.js';

/** Lease election settings. */
export interface LeaseElectorOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  name: string;
  identity: string;
  logger: Logger;
  metrics?: ScalerMetrics;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  now?: () => number;
  random?: () => number;
}

const standby = (): AbortController => {
  const c = new AbortController();
  c.abort(new LeadershipLost('not the leader'));
  return c;
};

/** The Lease elector. */
export class LeaseElector implements LeaderElector {
  readonly identity: string;
  private readonly o: Required<Omit<LeaseElectorOptions, 'metrics'>> & { metrics: ScalerMetrics | undefined };
  private readonly api: CoordinationV1Api;
  private readonly caller: KubeCaller;
  private readonly log: Logger;
  private readonly listeners = new Set<(leading: boolean) => void>();
  private leading = false;
  private term = standby();
  private deadlineTimer: NodeJS.Timeout | undefined;
  private lastRenew = 0;
  private observed: { key: string; at: number } | undefined;
  private standbyLoggedFor: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private inflight: Promise<void> | undefined;
  private closed = false;

  constructor(opts: LeaseElectorOptions) {
    this.o = {
      leaseDurationMs: LEASE_DURATION_MS,
      renewDeadlineMs: LEASE_RENEW_DEADLINE_MS,
      retryPeriodMs: LEASE_RETRY_PERIOD_MS,
      now: Date.now,
      random: Math.random,
      ...opts,
      metrics: opts.metrics,
    };
    if (this.o.renewDeadlineMs >= this.o.leaseDurationMs) throw new Error('the renew deadline must be shorter than the lease duration');
    this.identity = opts.identity;
    this.log = opts.logger.child({ component: 'leader', lease: opts.name, identity: opts.identity });
    this.api = opts.kubeConfig.makeApiClient(CoordinationV1Api);
    // One attempt per call: the election loop itself retries every retry period.
    this.caller = new KubeCaller(this.log, opts.metrics, { attempts: 1 });
  }

  private get durationSeconds(): number {
    return Math.max(1, Math.ceil(this.o.leaseDurationMs / 1000));
  }

  private spec(verb: CallSpec['verb']): CallSpec {
    return { verb, resource: 'leases', group: 'coordination.k8s.io', namespace: this.o.namespace };
  }

  isLeader(): boolean {
    this.checkDeadline();
    return this.leading;
  }

  signal(): AbortSignal {
    this.checkDeadline();
    return this.term.signal;
  }

  onChange(listener: (leading: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    this.log.info({ leaseDurationMs: this.o.leaseDurationMs, renewDeadlineMs: this.o.renewDeadlineMs, retryPeriodMs: this.o.retryPeriodMs }, `campaigning for Lease ${this.o.namespace}/${this.o.name} as ${this.identity}`);
    this.schedule(0);
  }

  private schedule(delay: number): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.inflight = this.attempt().finally(() => {
        this.inflight = undefined;
        const jitter = this.leading ? 1 : 1 + LEASE_RETRY_JITTER * this.o.random();
        this.schedule(this.o.retryPeriodMs * jitter);
      });
    }, delay);
  }

  private async attempt(): Promise<void> {
    try {
      await this.tryAcquireOrRenew();
    } catch (err) {
      if (statusOf(err) !== 403) this.log.warn({ status: statusOf(err), reason: apiMessage(err) }, `Lease ${this.o.name} ${this.leading ? 'renewal' : 'acquisition'} failed`);
    }
    this.checkDeadline();
  }

  private checkDeadline(): void {
    if (this.leading && this.o.now() - this.lastRenew >= this.o.renewDeadlineMs) {
      this.lose(`no renewal succeeded within ${this.o.renewDeadlineMs} ms`);
    }
  }

  private gain(at: number, from: string): void {
    this.lastRenew = at;
    // Lose on time even while a renewal hangs: nothing else may be asking isLeader() meanwhile.
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = setTimeout(() => this.checkDeadline(), Math.max(0, at + this.o.renewDeadlineMs - this.o.now()));
    if (this.leading) return;
    this.leading = true;
    this.term = new AbortController();
    this.standbyLoggedFor = undefined;
    this.o.metrics?.isLeader.set(1);
    this.o.metrics?.leaderTransitions.inc({ event: 'acquired' });
    this.log.info({ previousHolder: from || null }, `acquired Lease ${this.o.name}: ${this.identity} is the leader and acts`);
    for (const l of this.listeners) l(true);
  }

  private lose(reason: string): void {
    if (!this.leading) return;
    this.leading = false;
    clearTimeout(this.deadlineTimer);
    this.term.abort(new LeadershipLost(`lost Lease ${this.o.name}: ${reason}`));
    this.o.metrics?.isLeader.set(0);
    this.o.metrics?.leaderTransitions.inc({ event: 'lost' });
    this.log.warn({ reason }, `lost Lease ${this.o.name} (${reason}): ${this.identity} stopped acting`);
    for (const l of this.listeners) l(false);
  }

  private async tryAcquireOrRenew(): Promise<void> {
    const now = this.o.now();
    const { name, namespace } = this.o;
    let lease: V1Lease | undefined;
    try {
      lease = await this.caller.call(this.spec('get'), () => this.api.readNamespacedLease({ name, namespace }, callOptions({ timeoutMs: this.o.retryPeriodMs * 2 })));
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
    if (this.closed) return;
    if (!lease) {
      const body: V1Lease = {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name, namespace },
        spec: { holderIdentity: this.identity, leaseDurationSeconds: this.durationSeconds, acquireTime: new V1MicroTime(now), renewTime: new V1MicroTime(now), leaseTransitions: 0 },
      };
      try {
        await this.caller.call(this.spec('create'), () => this.api.createNamespacedLease({ namespace, body }, callOptions({ timeoutMs: this.o.retryPeriodMs * 2 })));
      } catch (err) {
        if (statusOf(err) === 409) return; // another replica created it first
        throw err;
      }
      this.gain(now, '');
      return;
    }

    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    const key = `${holder}|${timeMs(spec.renewTime)}|${lease.metadata?.resourceVersion ?? ''}`;
    if (this.observed?.key !== key) this.observed = { key, at: now };
    const durationMs = (spec.leaseDurationSeconds ?? this.durationSeconds) * 1000;
    if (holder && holder !== this.identity && this.observed.at + durationMs > now) {
      if (this.leading) this.lose(`Lease is now held by ${holder}`);
      if (this.standbyLoggedFor !== holder) {
        this.standbyLoggedFor = holder;
        this.log.info({ holder }, `Lease ${name} is held by ${holder}; ${this.identity} stands by`);
      }
      return;
    }

    const acquiring = holder !== this.identity;
    const body: V1Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { ...lease.metadata, name, namespace },
      spec: {
        holderIdentity: this.identity,
        leaseDurationSeconds: this.durationSeconds,
        acquireTime: acquiring ? new V1MicroTime(now) : spec.acquireTime ?? new V1MicroTime(now),
        renewTime: new V1MicroTime(now),
        leaseTransitions: (spec.leaseTransitions ?? 0) + (acquiring ? 1 : 0),
      },
    };
    try {
      await this.caller.call(this.spec('update'), () => this.api.replaceNamespacedLease({ name, namespace, body }, callOptions({ timeoutMs: this.o.retryPeriodMs * 2 })));
    } catch (err) {
      if (statusOf(err) === 409) {
        // Someone else wrote the Lease since we read it: they renewed or took it. Re-read next period.
        if (acquiring) return;
        throw err;
      }
      throw err;
    }
    if (this.closed) return;
    this.gain(now, acquiring ? holder : this.identity);
  }

  async close(opts: { release?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    clearTimeout(this.deadlineTimer);
    await this.inflight;
    const wasLeading = this.leading;
    if (wasLeading) {
      this.leading = false;
      this.term.abort(new LeadershipLost(`stepped down from Lease ${this.o.name}`));
      this.o.metrics?.isLeader.set(0);
      this.log.info(`${this.identity} steps down from Lease ${this.o.name} (shutting down)`);
      for (const l of this.listeners) l(false);
    }
    if (!wasLeading || opts.release === false) return;
    const { name, namespace } = this.o;
    try {
      const lease = await this.api.readNamespacedLease({ name, namespace }, callOptions({ timeoutMs: this.o.retryPeriodMs * 2 }));
      if (lease.spec?.holderIdentity !== this.identity) return;
      const now = new V1MicroTime(this.o.now());
      const body: V1Lease = { ...lease, spec: { leaseDurationSeconds: 1, acquireTime: now, renewTime: now, leaseTransitions: lease.spec?.leaseTransitions ?? 0 } };
      await this.api.replaceNamespacedLease({ name, namespace, body }, callOptions({ timeoutMs: this.o.retryPeriodMs * 2 }));
      this.log.info(`released Lease ${name}`);
    } catch (err) {
      this.log.warn({ status: statusOf(err), reason: apiMessage(err) }, `could not release Lease ${name}; a standby takes over when it expires`);
    }
  }
}

/** Create a Lease elector (call `start()`). */
export function createLeaseElector(opts: LeaseElectorOptions): LeaseElector {
  return new LeaseElector(opts);
}
