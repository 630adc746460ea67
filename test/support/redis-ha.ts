/**
 * Real Redis HA on loopback random ports for tests: a 3-node `redis-server --cluster-enabled yes` cluster
 * joined with `redis-cli --cluster create`, and `redis-sentinel` watching a primary with one replica.
 * Persistence is off (as the chart's bundled Redis); every process is SIGKILLed and its dir removed on close.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './net.js';

const READY_TIMEOUT_MS = 20_000;
const POLL_MS = 50;
/** How fast Sentinel and the Cluster notice a dead node (the production defaults are 30 s / 15 s). */
export const HA_DOWN_AFTER_MS = 1000;

interface Proc {
  child: ChildProcess;
  kill(): Promise<void>;
}

function run(cmd: string, args: string[], cwd: string): Proc {
  const child = spawn(cmd, args, { cwd, stdio: 'ignore' });
  child.once('error', (err) => process.stderr.write(`cannot run ${cmd} (run scripts/setup.sh): ${err.message}\n`));
  return {
    child,
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    },
  };
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = READY_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what} not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** One command on a fresh connection (no retries), for probing a node. */
async function ask(port: number, ...args: string[]): Promise<unknown> {
  const r = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return await r.call(args[0]!, ...args.slice(1));
  } finally {
    r.disconnect();
  }
}

const SERVER_ARGS = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'];

/** A 3-master Redis Cluster. */
export interface RedisClusterHandle {
  /** `redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3` */
  readonly url: string;
  readonly ports: readonly number[];
  /** The node (index) that serves the slot of `key`. */
  nodeOf(key: string): Promise<number>;
  /** SIGKILL node `i` (its data is lost: no persistence). */
  stopNode(i: number): Promise<void>;
  /** Start node `i` again with its nodes.conf: it rejoins with its slots, empty. Resolves once the cluster is ok. */
  startNode(i: number): Promise<void>;
  close(): Promise<void>;
}

/** Start 3 cluster-enabled servers and join them with `redis-cli --cluster create`. */
export async function startRedisCluster(): Promise<RedisClusterHandle> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rtc-redis-cluster-'));
  const ports: number[] = [];
  const busPorts: number[] = [];
  for (let i = 0; i < 3; i++) {
    ports.push(await freePort());
    busPorts.push(await freePort());
  }
  const procs: Array<Proc | undefined> = [];
  const startOne = async (i: number) => {
    // cluster-port: the bus port must be free too (port + 10000 may be taken or above 65535).
    procs[i] = run('redis-server', ['--port', String(ports[i]), '--cluster-enabled', 'yes', '--cluster-port', String(busPorts[i]), '--cluster-config-file', `nodes-${i}.conf`, '--cluster-node-timeout', String(HA_DOWN_AFTER_MS), ...SERVER_ARGS], dir);
    await until(`cluster node ${i} listening`, async () => (await ask(ports[i]!, 'PING')) === 'PONG');
  };
  const clusterOk = () => until('cluster_state:ok on every node', async () => {
    for (const p of ports) if (!String(await ask(p, 'CLUSTER', 'INFO')).includes('cluster_state:ok')) return false;
    return true;
  });
  const close = async () => {
    for (const p of procs) await p?.kill();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < 3; i++) await startOne(i);
    const created = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8', timeout: READY_TIMEOUT_MS });
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
    await clusterOk();
  } catch (err) {
    await close();
    throw err;
  }
  return {
    url: `redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`,
    ports,
    async nodeOf(key) {
      const slot = Number(await ask(ports[0]!, 'CLUSTER', 'KEYSLOT', key));
      const slots = (await ask(ports[0]!, 'CLUSTER', 'SLOTS')) as Array<[number, number, [string, number]]>;
      const range = slots.find(([from, to]) => slot >= from && slot <= to);
      if (!range) throw new Error(`no node serves slot ${slot}`);
      return ports.indexOf(Number(range[2][1]));
    },
    async stopNode(i) {
      await procs[i]?.kill();
    },
    async startNode(i) {
      await startOne(i);
      await clusterOk();
    },
    close,
  };
}

/** A primary, one replica and one Sentinel (quorum 1) on loopback. */
export interface RedisSentinelHandle {
  /** `redis+sentinel://127.0.0.1:<sentinel port>/<master name>` */
  readonly url: string;
  readonly masterName: string;
  /** The port of the current primary, as Sentinel reports it. */
  primaryPort(): Promise<number>;
  /** SIGKILL the current primary; resolves with the time Sentinel then reports the replica as the primary. */
  killPrimaryAndAwaitPromotion(): Promise<{ killedAt: number; promotedAt: number }>;
  close(): Promise<void>;
}

/** Start a primary, a replica of it and a Sentinel; resolves once the Sentinel knows the replica in sync. */
export async function startRedisSentinel(masterName = 'rtcmaster'): Promise<RedisSentinelHandle> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rtc-redis-sentinel-'));
  const [primary, replica, sentinel] = [await freePort(), await freePort(), await freePort()];
  const procs = new Map<number, Proc>();
  const close = async () => {
    for (const p of procs.values()) await p.kill();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    procs.set(primary, run('redis-server', ['--port', String(primary), ...SERVER_ARGS], dir));
    await until('primary listening', async () => (await ask(primary, 'PING')) === 'PONG');
    procs.set(replica, run('redis-server', ['--port', String(replica), '--replicaof', '127.0.0.1', String(primary), ...SERVER_ARGS], dir));
    await until('replica in sync', async () => String(await ask(replica, 'INFO', 'replication')).includes('master_link_status:up'));
    // Sentinel rewrites its config file, so it gets its own writable copy.
    const conf = path.join(dir, 'sentinel.conf');
    writeFileSync(conf, [
      `port ${sentinel}`,
      'bind 127.0.0.1',
      `sentinel monitor ${masterName} 127.0.0.1 ${primary} 1`,
      `sentinel down-after-milliseconds ${masterName} ${HA_DOWN_AFTER_MS}`,
      `sentinel failover-timeout ${masterName} 10000`,
      `sentinel parallel-syncs ${masterName} 1`,
      '',
    ].join('\n'));
    procs.set(sentinel, run('redis-sentinel', [conf], dir));
    await until('sentinel sees the replica', async () => {
      const replicas = (await ask(sentinel, 'SENTINEL', 'REPLICAS', masterName)) as string[][];
      return replicas.some((r) => r.includes(String(replica)) && !String(r[r.indexOf('flags') + 1]).includes('down'));
    });
  } catch (err) {
    await close();
    throw err;
  }
  const primaryPort = async () => Number(((await ask(sentinel, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName)) as string[])[1]);
  return {
    url: `redis+sentinel://127.0.0.1:${sentinel}/${masterName}`,
    masterName,
    primaryPort,
    async killPrimaryAndAwaitPromotion() {
      const before = await primaryPort();
      const killedAt = Date.now();
      await procs.get(before)?.kill();
      await until('Sentinel to promote the replica', async () => (await primaryPort()) !== before && String(await ask(await primaryPort(), 'ROLE')).startsWith('master'), 30_000);
      return { killedAt, promotedAt: Date.now() };
    },
    close,
  };
}
