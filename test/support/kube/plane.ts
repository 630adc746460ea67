/**
 * A real Kubernetes control plane for tests: etcd, kube-apiserver (RBAC, TokenRequest with a generated
 * service-account key pair, an admin token) and kube-controller-manager, built by scripts/setup.sh from
 * test/kube. Loopback ports chosen at random, data in a temp dir; `close()` stops everything and removes
 * the dir, and the reaper does it too when the test process dies. Output of all three goes to one log.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { freePort } from '../net.js';
import { startProc, type Proc } from './proc.js';
import { guardDir, releaseDir } from './reaper.js';

/** The version test/kube pins and scripts/setup.sh builds. */
export const KUBE_VERSION = 'v1.37.2';

/** Controllers the plane runs (enough for Deployments, ServiceAccounts, EndpointSlices and garbage collection). */
export const PLANE_CONTROLLERS = ['deployment-controller', 'replicaset-controller', 'garbage-collector-controller', 'serviceaccount-controller', 'endpointslice-controller'];

const READY_TIMEOUT_MS = 60_000;
const POLL_MS = 100;

/** Where setup.sh puts the binaries (RTC_KUBE_BIN_DIR overrides). */
export function kubeBinDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.RTC_KUBE_BIN_DIR) return env.RTC_KUBE_BIN_DIR;
  const cache = env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(cache, 'rtc-edge', `kube-${KUBE_VERSION}`);
}

/** A running plane. */
export interface KubePlane {
  /** `https://127.0.0.1:<port>` */
  readonly server: string;
  /** PEM of the API server's self-signed serving certificate (and its CA). */
  readonly caPem: string;
  readonly adminToken: string;
  /** Admin kubeconfig file (for helm) and the same as a KubeConfig. */
  readonly kubeconfigPath: string;
  readonly kubeConfig: KubeConfig;
  /** The combined etcd/apiserver/controller-manager log. */
  readonly logPath: string;
  /** Temp dir of this plane (removed by close). */
  readonly dir: string;
  /** The API server's audit events of ServiceAccount requests so far (the authorizer's real answers). */
  audit(): AuditEvent[];
  /** A kubeconfig document for `token` against this API server. */
  kubeconfigFor(token: string, user: string): string;
  /** The last `lines` lines of the plane log. */
  logTail(lines?: number): string;
  /** Run `fn`; when it throws, print the plane log tail to stderr (and keep the log file), then rethrow. */
  explain<T>(fn: () => Promise<T> | T): Promise<T>;
  /** Stop all three and remove the temp dir (the log too, unless a failure was explained). Idempotent. */
  close(): Promise<void>;
}

/** One audit.k8s.io/v1 event (the fields the tests read). */
export interface AuditEvent {
  stage: 'ResponseStarted' | 'ResponseComplete' | 'Panic';
  verb: string;
  user: { username: string };
  objectRef?: { resource?: string; subresource?: string; namespace?: string; name?: string; apiGroup?: string };
  responseStatus?: { code?: number; reason?: string; message?: string };
  requestReceivedTimestamp: string;
  stageTimestamp: string;
}

// Metadata-level audit of every ServiceAccount request: verb, resource, user and the answer code.
const AUDIT_POLICY = JSON.stringify({ apiVersion: 'audit.k8s.io/v1', kind: 'Policy', omitStages: ['RequestReceived'], rules: [{ level: 'Metadata', userGroups: ['system:serviceaccounts'] }, { level: 'None' }] });

/** A kubeconfig document (JSON is YAML) for one server and one bearer token. */
export function kubeconfigText(server: string, caPem: string, token: string, user: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'rtc-test', cluster: { server, 'certificate-authority-data': Buffer.from(caPem).toString('base64') } }],
    users: [{ name: user, user: { token } }],
    contexts: [{ name: 'rtc-test', context: { cluster: 'rtc-test', user } }],
    'current-context': 'rtc-test',
  });
}

function get(url: string, opts: https.RequestOptions): Promise<{ status: number; body: string }> {
  const mod = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.get(url, { ...opts, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

async function until(what: string, procs: readonly Proc[], logTail: () => string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const dead = procs.find((p) => !p.running());
    if (dead) throw new Error(`${dead.name} exited while waiting for ${what}; plane log tail:\n${logTail()}`);
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what} not within ${READY_TIMEOUT_MS} ms; plane log tail:\n${logTail()}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** Start etcd, kube-apiserver and kube-controller-manager; resolves once /readyz answers ok and controllers act. */
export async function startKubePlane(opts: { controllers?: readonly string[] } = {}): Promise<KubePlane> {
  const bin = kubeBinDir();
  for (const b of ['etcd', 'kube-apiserver', 'kube-controller-manager']) {
    if (!existsSync(path.join(bin, b))) throw new Error(`${path.join(bin, b)} is missing: run scripts/setup.sh (it builds the control plane from test/kube)`);
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rtc-kube-'));
  guardDir(dir);
  const logPath = `${dir}.log`;
  guardDir(logPath);
  const log = createWriteStream(logPath, { flags: 'a' });
  const procs: Proc[] = [];
  let keepLog = false;
  const logTail = (lines = 80) => {
    try {
      return readFileSync(logPath, 'utf8').split('\n').slice(-lines - 1).join('\n');
    } catch {
      return '(no plane log)';
    }
  };
  let closed: Promise<void> | undefined;
  const close = () =>
    (closed ??= (async () => {
      for (const p of [...procs].reverse()) await p.stop(5000);
      await new Promise((r) => log.end(r));
      rmSync(dir, { recursive: true, force: true });
      releaseDir(dir);
      if (keepLog) process.stderr.write(`kube plane log kept at ${logPath}\n`);
      else rmSync(logPath, { force: true });
      releaseDir(logPath);
    })());

  try {
    const [etcdPort, peerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    procs.push(
      startProc('etcd', path.join(bin, 'etcd'), ['--data-dir', path.join(dir, 'etcd'), '--listen-client-urls', etcdUrl, '--advertise-client-urls', etcdUrl, '--listen-peer-urls', `http://127.0.0.1:${peerPort}`, '--unsafe-no-fsync', '--log-level', 'warn'], { log }),
    );
    await until('etcd /health', procs, logTail, async () => (await get(`${etcdUrl}/health`, {})).body.includes('"true"'));

    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs1', format: 'pem' } });
    writeFileSync(path.join(dir, 'sa.pub'), publicKey);
    writeFileSync(path.join(dir, 'sa.key'), privateKey, { mode: 0o600 });
    const adminToken = randomBytes(24).toString('hex');
    writeFileSync(path.join(dir, 'tokens.csv'), `${adminToken},admin,admin,system:masters\n`, { mode: 0o600 });
    const certDir = path.join(dir, 'certs');
    writeFileSync(path.join(dir, 'audit-policy.yaml'), AUDIT_POLICY);
    const auditLog = path.join(dir, 'audit.log');
    procs.push(
      startProc(
        'kube-apiserver',
        path.join(bin, 'kube-apiserver'),
        [
          '--etcd-servers', etcdUrl,
          '--secure-port', String(apiPort), '--bind-address', '127.0.0.1', '--cert-dir', certDir,
          '--token-auth-file', path.join(dir, 'tokens.csv'),
          '--service-account-issuer', 'https://kubernetes.default.svc',
          '--service-account-key-file', path.join(dir, 'sa.pub'),
          '--service-account-signing-key-file', path.join(dir, 'sa.key'),
          '--authorization-mode', 'RBAC',
          '--service-cluster-ip-range', '10.96.0.0/16',
          '--audit-policy-file', path.join(dir, 'audit-policy.yaml'),
          '--audit-log-path', auditLog,
          '--profiling=false',
        ],
        { log },
      ),
    );
    const server = `https://127.0.0.1:${apiPort}`;
    const certFile = path.join(certDir, 'apiserver.crt');
    let caPem = '';
    const auth = { headers: { authorization: `Bearer ${adminToken}` } };
    await until('kube-apiserver /readyz', procs, logTail, async () => {
      caPem ||= existsSync(certFile) ? readFileSync(certFile, 'utf8') : '';
      return caPem !== '' && (await get(`${server}/readyz`, { ...auth, ca: caPem })).status === 200;
    });

    const kubeconfigPath = path.join(dir, 'admin.kubeconfig');
    const adminDoc = kubeconfigText(server, caPem, adminToken, 'admin');
    writeFileSync(kubeconfigPath, adminDoc, { mode: 0o600 });
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromString(adminDoc);

    procs.push(
      startProc(
        'kube-controller-manager',
        path.join(bin, 'kube-controller-manager'),
        ['--kubeconfig', kubeconfigPath, '--leader-elect=false', '--secure-port', '0', '--controllers', (opts.controllers ?? PLANE_CONTROLLERS).join(',')],
        { log },
      ),
    );
    // The serviceaccount controller writing `default` in `default` shows the controllers run.
    await until('the controller manager (default ServiceAccount)', procs, logTail, async () => (await get(`${server}/api/v1/namespaces/default/serviceaccounts/default`, { ...auth, ca: caPem })).status === 200);

    const plane: KubePlane = {
      server,
      caPem,
      adminToken,
      kubeconfigPath,
      kubeConfig,
      logPath,
      dir,
      kubeconfigFor: (token, user) => kubeconfigText(server, caPem, token, user),
      audit: () => (existsSync(auditLog) ? readFileSync(auditLog, 'utf8') : '').split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditEvent),
      logTail,
      async explain(fn) {
        try {
          return await fn();
        } catch (err) {
          keepLog = true;
          process.stderr.write(`--- kube plane log tail (${logPath}) ---\n${logTail()}\n---\n`);
          throw err;
        }
      },
      close,
    };
    return plane;
  } catch (err) {
    keepLog = true;
    await close();
    throw err;
  }
}
