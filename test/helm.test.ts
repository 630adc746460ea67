/**
 * The Helm chart, offline: `helm lint --strict` and `helm template` for the default values and every
 * ci/*-values.yaml; every rendered object validated against the Kubernetes schemas (kubernetes-models)
 * plus an unknown-field check against @kubernetes/client-node's models; the chart's contracts asserted
 * (socket Deployment ↔ headless Service ↔ subdomain ↔ SOCKET_WORKLOAD_NAME, preStop /drain on the admin
 * port, grace ≥ drain + 30 s, RBAC = what the scaler and the gateway call, NetworkPolicies, namespace);
 * the ConfigMap fed to the real `loadConfig` of every role; the schema rejecting bad values.
 */
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { parseDocument, isMap, isScalar, isPair, type YAMLMap } from 'yaml';
import ts from 'typescript';
import * as k8s from '@kubernetes/client-node';
import { Deployment } from 'kubernetes-models/apps/v1';
import { ConfigMap, Pod, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { Ingress, NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding } from 'kubernetes-models/admissionregistration.k8s.io/v1';
import { Lease } from 'kubernetes-models/coordination.k8s.io/v1';
import { DEFAULTS, loadConfig, type Role as EdgeRole } from '../src/config.js';
import { DNS1123_LABEL } from '../src/constants.js';
import { parseRedisUrl } from '../src/registry/redis-url.js';
import { createLogger } from '../src/logger.js';
import { createMemoryRegistry } from '../src/registry/index.js';
import { parseApiPath, rbacVerbsUsed, startFakeKubernetes, type ApiPermission, type RecordedRequest } from './support/fake-k8s.js';
import { probeReadiness, removeRetired, runRecordedScalerSession } from './support/scaler-session.js';
import { CHART, HELM_KUBE_VERSION as KUBE_VERSION, ROOT, helm, renderChart, type Obj } from './support/helm.js';
import { start as startScaler } from '../scaler/index.js';
import { createResolver, isUpstream } from '../gateway/resolvers/index.js';

const NAMESPACE = 'rtc';
const RELEASE = 'rtc-edge';

function render(files: string[], sets: string[] = []): { status: number | null; objects: Obj[]; stderr: string } {
  return renderChart(RELEASE, NAMESPACE, files, sets);
}

const VARIANTS: { name: string; files: string[] }[] = [
  { name: 'default values', files: [] },
  ...fs.readdirSync(path.join(CHART, 'ci')).filter((f) => f.endsWith('-values.yaml')).sort()
    .map((f) => ({ name: `ci/${f}`, files: [path.join(CHART, 'ci', f)] })),
];

/** kubernetes-models classes by apiVersion/kind: every kind the chart renders must be listed here. */
const MODELS: Record<string, new (o: any) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'v1/ConfigMap': ConfigMap,
  'v1/Pod': Pod,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'rbac.authorization.k8s.io/v1/Role': Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
  'networking.k8s.io/v1/Ingress': Ingress,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy': ValidatingAdmissionPolicy,
  'admissionregistration.k8s.io/v1/ValidatingAdmissionPolicyBinding': ValidatingAdmissionPolicyBinding,
  'coordination.k8s.io/v1/Lease': Lease,
};
/** Kinds without a namespace. */
const CLUSTER_SCOPED = new Set(['ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']);

type AttrMap = { baseName: string; type: string }[];
const k8sModels = k8s as unknown as Record<string, { getAttributeTypeMap?: () => AttrMap } | undefined>;

/** kubernetes-models ignores unknown fields; walk the client's generated models to catch typos like `subDomain`. */
function unknownFields(value: unknown, type: string, at: string, out: string[]): void {
  if (value === null || value === undefined) return;
  const arr = /^Array<(.+)>$/.exec(type);
  if (arr) {
    if (!Array.isArray(value)) out.push(`${at}: expected an array`);
    else value.forEach((v, i) => unknownFields(v, arr[1]!, `${at}[${i}]`, out));
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    for (const [k, v] of Object.entries(value as object)) unknownFields(v, map[1]!, `${at}.${k}`, out);
    return;
  }
  const attrs = k8sModels[type]?.getAttributeTypeMap?.();
  if (!attrs) return;
  if (typeof value !== 'object' || Array.isArray(value)) {
    out.push(`${at}: expected an object (${type})`);
    return;
  }
  for (const [k, v] of Object.entries(value)) {
    const a = attrs.find((x) => x.baseName === k);
    if (!a) out.push(`${at}.${k}: unknown field of ${type}`);
    else unknownFields(v, a.type, `${at}.${k}`, out);
  }
}

const component = (o: Obj) => o.metadata.labels?.['app.kubernetes.io/component'];
const find = (objs: Obj[], kind: string, comp: string) => objs.filter((o) => o.kind === kind && component(o) === comp);
const one = (objs: Obj[], kind: string, comp: string): Obj => {
  const found = find(objs, kind, comp);
  assert.equal(found.length, 1, `expected one ${kind} of component ${comp}, found ${found.length}`);
  return found[0]!;
};
/** The gateway's two Services: the client-facing one (port `http`) and the admin one (port `admin`). */
const gatewayServices = (objs: Obj[]): { client: Obj; admin: Obj } => {
  const svcs = find(objs, 'Service', 'gateway');
  assert.equal(svcs.length, 2, `expected the gateway's client and admin Services, found ${svcs.length}`);
  const byPort = (name: string) => svcs.filter((s) => (s.spec.ports as any[]).some((p) => p.name === name));
  const [client, admin] = [byPort('http'), byPort('admin')];
  assert.equal(client.length, 1);
  assert.equal(admin.length, 1);
  assert.notEqual(client[0], admin[0], 'one Service exposes both ports');
  return { client: client[0]!, admin: admin[0]! };
};
const matches = (selector: Record<string, string>, labels: Record<string, string> | undefined) =>
  Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels?.[k] === v);
const podTemplate = (d: Obj) => d.spec.template as { metadata: { labels: Record<string, string>; annotations?: Record<string, string> }; spec: any };
const container = (d: Obj, name: string) => {
  const c = (podTemplate(d).spec.containers as any[]).find((x) => x.name === name);
  assert.ok(c, `container ${name} in ${d.metadata.name}`);
  return c;
};
/** A probe/hook port (number or container port name) as a number. */
const portOf = (c: any, port: number | string): number => {
  if (typeof port === 'number') return port;
  const p = (c.ports as any[]).find((x) => x.name === port);
  assert.ok(p, `container ${c.name} has no port named ${port}`);
  return p.containerPort as number;
};

/** Expand a Role's rules into apiGroup|resource|verb triples (resourceNames kept aside). */
function ruleTriples(role: Obj): Map<string, string[] | undefined> {
  const out = new Map<string, string[] | undefined>();
  for (const r of role.rules as { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] }[]) {
    for (const g of r.apiGroups) for (const res of r.resources) for (const v of r.verbs) {
      const key = `${g}|${res}|${v}`;
      assert.ok(!out.has(key), `${role.metadata.name}: ${key} granted twice`);
      assert.notEqual(v, '*', 'no wildcard verbs');
      assert.notEqual(res, '*', 'no wildcard resources');
      out.set(key, r.resourceNames);
    }
  }
  return out;
}
const useKey = (u: ApiPermission) => `${u.apiGroup}|${u.resource}|${u.verb}`;

/** Environment a container sees: ConfigMap (envFrom), then its env (downward API stand-ins, Secret refs). */
function containerEnv(objs: Obj[], c: any, podName: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of c.envFrom ?? []) {
    const cm = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name === from.configMapRef?.name);
    assert.ok(cm, `envFrom ConfigMap ${from.configMapRef?.name} is rendered`);
    Object.assign(env, cm.data);
  }
  const downward: Record<string, string> = { 'metadata.name': podName, 'status.podIP': '10.1.2.3', 'metadata.namespace': NAMESPACE };
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = String(e.value);
    else if (e.valueFrom?.fieldRef) {
      const v = downward[e.valueFrom.fieldRef.fieldPath];
      assert.ok(v, `unexpected fieldRef ${e.valueFrom.fieldRef.fieldPath}`);
      env[e.name] = v;
    } else if (e.valueFrom?.resourceFieldRef) {
      // The downward API's rule for CPU: the container's limit divided by the divisor, rounded up.
      const ref = e.valueFrom.resourceFieldRef;
      assert.equal(ref.resource, 'limits.cpu', `unexpected resourceFieldRef ${ref.resource}`);
      const limit = (c.resources?.limits?.cpu ?? assert.fail(`${e.name}: resourceFieldRef without a CPU limit`)) as string | number;
      const cpus = (q: string | number) => (String(q).endsWith('m') ? Number(String(q).slice(0, -1)) / 1000 : Number(q));
      env[e.name] = String(Math.ceil(cpus(limit) / cpus(ref.divisor ?? 1)));
    } else if (e.valueFrom?.secretKeyRef) {
      const ref = e.valueFrom.secretKeyRef;
      const secret = objs.find((o) => o.kind === 'Secret' && o.metadata.name === ref.name);
      // An existing Secret (not rendered by the chart) stands in with a valid URL or password.
      env[e.name] = secret ? secret.stringData[ref.key] : e.name === 'REDIS_PASSWORD' ? 'existing-secret-password' : 'redis+cluster://redis-0.redis:6379,redis-1.redis:6379';
    } else assert.fail(`env ${e.name}: unsupported source`);
  }
  return env;
}

const silent = createLogger('silent');

/**
 * Run two real scalers (the chart's 2 replicas) with the chart's scaler environment against the fake API
 * server through a scale-out, a deletion-cost scale-in and a Lease hand-over; return what they called.
 */
async function scalerRbacUsage(objs: Obj[]): Promise<{ used: ApiPermission[]; requests: RecordedRequest[] }> {
  const c = container(one(objs, 'Deployment', 'scaler'), 'scaler');
  const cfg = (pod: string) => ({
    ...loadConfig(containerEnv(objs, c, pod), 'scaler'),
    redisUrl: undefined,
    scalerIntervalMs: 100,
    scaleInStabilizationMs: 0,
    socketTargetConnections: 100,
    socketMinReplicas: 2,
    socketMaxReplicas: 6,
  });
  const a = cfg('rtc-edge-scaler-6c9d7b5f4-aaaaa');
  const fake = await startFakeKubernetes({ namespace: a.podNamespace, deployment: a.socketWorkloadName, replicas: 2 });
  const registry = createMemoryRegistry();
  fake.onScaleIn = removeRetired(registry);
  let total = 400;
  const beat = () => {
    const names = fake.podNames().sort();
    names.forEach((podId, i) => {
      const t = Date.now();
      void registry.heartbeat({ podId, ip: '10.0.0.1', port: 8080, adminPort: 9090, connections: Math.max(0, Math.floor(total / names.length) + (i - 1) * 3), draining: false, startedAt: t, updatedAt: t, heartbeatMs: 100 });
      void probeReadiness(registry, fake, podId);
    });
  };
  beat();
  const beating = setInterval(beat, 50);
  const deps = (user: string) => ({
    logger: silent, registry, kubeConfig: fake.kubeConfig(user), admin: false,
    lease: { leaseDurationMs: 1000, renewDeadlineMs: 600, retryPeriodMs: 100 },
    bootGraceMs: 0, victimTimeoutMs: 2000, confirmTimeoutMs: 3000, retry: { baseMs: 10, maxMs: 50 },
  });
  const scalers = [await startScaler(a, deps('scaler-a')), await startScaler(cfg('rtc-edge-scaler-6c9d7b5f4-bbbbb'), deps('scaler-b'))];
  try {
    await fake.waitFor(() => fake.replicas() === 4, 20_000, 'scale-out 2 → 4');
    total = 100;
    await fake.waitFor(() => fake.replicas() === 2 && fake.podNames().length === 2, 30_000, 'scale-in 4 → 2');
    assert.ok(fake.writes().some((r) => r.resource === 'pods' && r.verb === 'patch'), 'the scale-in wrote deletion costs');
    await fake.waitFor(() => scalers.some((s) => s.isLeader()), 5000, 'a leader');
    const leader = scalers.find((s) => s.isLeader())!;
    const other = scalers.find((s) => s !== leader)!;
    await leader.close();
    await fake.waitFor(() => other.isLeader(), 10_000, 'Lease hand-over to the second replica');
  } finally {
    clearInterval(beating);
    for (const s of scalers) await s.close();
    await registry.close();
    await fake.close();
  }
  return { used: rbacVerbsUsed(fake.requests), requests: [...fake.requests] };
}

/**
 * Run the gateway's resolver factory with the chart's gateway environment (GATEWAY_RESOLVER=endpointslices)
 * against a recording EndpointSlice API; return what it called once it resolved a pod.
 */
async function gatewayRbacUsage(objs: Obj[]): Promise<{ used: ApiPermission[]; requests: RecordedRequest[] }> {
  const cfg = loadConfig(containerEnv(objs, container(one(objs, 'Deployment', 'gateway'), 'gateway'), 'edge-gateway-7f6b5c-qqqqq'), 'gateway');
  assert.equal(cfg.gatewayResolver, 'endpointslices');
  const podName = `${cfg.socketServiceName}-5d8f7c9b4-x2x7k`;
  const slice = {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
    metadata: { name: `${cfg.socketServiceName}-abcde`, namespace: cfg.podNamespace, resourceVersion: '10', labels: { 'kubernetes.io/service-name': cfg.socketServiceName } },
    ports: [{ name: 'ws', port: cfg.socketPort, protocol: 'TCP' }],
    endpoints: [{ addresses: ['10.0.0.7'], conditions: { ready: true }, targetRef: { kind: 'Pod', name: podName, namespace: cfg.podNamespace } }],
  };
  const requests: RecordedRequest[] = [];
  const watches = new Set<http.ServerResponse>();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const query = Object.fromEntries(url.searchParams);
    const route = parseApiPath(url.pathname);
    const verb = req.method !== 'GET' ? (req.method ?? '').toLowerCase() : route?.name ? 'get' : query.watch === 'true' || query.watch === '1' ? 'watch' : 'list';
    const wanted = route?.apiGroup === 'discovery.k8s.io' && route.resource === 'endpointslices' && route.namespace === cfg.podNamespace
      && query.labelSelector === `kubernetes.io/service-name=${cfg.socketServiceName}` && (verb === 'list' || verb === 'watch');
    requests.push({
      at: Date.now(), method: req.method ?? '', path: url.pathname, query, verb, apiGroup: route?.apiGroup ?? '', resource: route?.resource ?? '',
      subresource: route?.subresource, namespace: route?.namespace, name: route?.name, status: wanted ? 200 : 404, contentType: req.headers['content-type'], user: 'gateway', body: undefined,
    });
    if (!wanted) {
      res.writeHead(404, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 404, reason: 'NotFound', message: 'not served' }));
    }
    if (verb === 'list') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSliceList', metadata: { resourceVersion: '10' }, items: [slice] }));
    }
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    watches.add(res);
    res.on('close', () => watches.delete(res));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const kubeConfig = new k8s.KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'fake', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
    users: [{ name: 'gateway', token: 'gateway' }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'gateway', namespace: cfg.podNamespace }],
    currentContext: 'fake',
  });
  const resolver = createResolver(cfg, { logger: silent, kubeConfig });
  try {
    await resolver.ready();
    const deadline = Date.now() + 10_000;
    for (;;) {
      const r = resolver.resolve(podName);
      if (!(r instanceof Promise) && isUpstream(r) && requests.some((q) => q.verb === 'watch')) {
        assert.deepEqual(r, { host: '10.0.0.7', port: cfg.socketPort });
        break;
      }
      assert.ok(Date.now() < deadline, 'the endpointslices resolver never resolved the pod');
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await resolver.close();
    for (const w of watches) w.end();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
  return { used: rbacVerbsUsed(requests), requests };
}

/**
 * The environment variables each role's code reads: the `config.<field>` / `cfg.<field>` uses (mapped to variables through
 * src/config.ts's `read('VAR', …)` lines) used anywhere in the role's import closure, plus app/cli.ts (which
 * reads LOG_LEVEL for every role). The local workload is left out: the chart always runs SCALER_WORKLOAD=kubernetes.
 */
function variablesReadByRole(): Record<'gateway' | 'socket' | 'scaler', Set<string>> {
  const fields = new Map<string, string>();
  for (const m of fs.readFileSync(path.join(ROOT, 'src/config.ts'), 'utf8').matchAll(/^\s+([a-zA-Z]+): read\('([A-Z_]+)'/gm)) fields.set(m[1]!, m[2]!);
  assert.ok(fields.size > 20, 'src/config.ts read() lines found');
  const closure = (entry: string): string[] => {
    const seen = new Set<string>();
    const todo = [entry];
    while (todo.length > 0) {
      const f = todo.pop()!;
      if (seen.has(f) || f === 'scaler/workload/local.ts' || f === 'src/config.ts') continue;
      seen.add(f);
      for (const i of ts.preProcessFile(fs.readFileSync(path.join(ROOT, f), 'utf8'), true, true).importedFiles) {
        if (!i.fileName.startsWith('.')) continue;
        todo.push(path.relative(ROOT, path.resolve(ROOT, path.dirname(f), i.fileName)).replace(/\.js$/, '.ts'));
      }
    }
    return [...seen];
  };
  const readsOf = (files: string[]) => {
    const used = new Set<string>();
    for (const f of files) {
      const text = fs.readFileSync(path.join(ROOT, f), 'utf8');
      for (const [field, name] of fields) if (new RegExp(`\\b(config|cfg)\\??\\.${field}\\b`).test(text)) used.add(name);
    }
    return used;
  };
  const common = readsOf(['app/cli.ts']);
  const out = {} as Record<'gateway' | 'socket' | 'scaler', Set<string>>;
  for (const role of ['gateway', 'socket', 'scaler'] as const) out[role] = new Set([...common, ...readsOf(closure(`${role}/index.ts`))]);
  return out;
}

const rendered = new Map<string, Obj[]>();
let scalerUse: { used: ApiPermission[]; requests: RecordedRequest[] } = { used: [], requests: [] };
/** The scaler engineer's recorded session (the one the scaler's own tests run): verbs and log messages. */
let scalerSession: { verbs: ApiPermission[]; messages: string[] } = { verbs: [], messages: [] };
let gatewayUse: { used: ApiPermission[]; requests: RecordedRequest[] } = { used: [], requests: [] };

describe('helm chart helm/rtc-edge', () => {
  before(async () => {
    const v = helm(['version', '--short']);
    assert.equal(v.status, 0, v.stderr);
    for (const variant of VARIANTS) {
      const r = render(variant.files);
      assert.equal(r.status, 0, `${variant.name}: helm template failed:\n${r.stderr}`);
      rendered.set(variant.name, r.objects);
    }
    scalerUse = await scalerRbacUsage(rendered.get('default values')!);
    scalerSession = await runRecordedScalerSession();
    gatewayUse = await gatewayRbacUsage(rendered.get('ci/endpointslices-values.yaml')!);
  });

  test('helm lint --strict passes for the default values and every ci/*-values.yaml', () => {
    assert.ok(VARIANTS.length >= 5, 'ci/ holds the variants');
    for (const variant of VARIANTS) {
      const r = helm(['lint', '--strict', CHART, '--namespace', NAMESPACE, '--kube-version', KUBE_VERSION, ...variant.files.flatMap((f) => ['-f', f])]);
      assert.equal(r.status, 0, `${variant.name}:\n${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  });

  test('every rendered object validates against the Kubernetes schemas, has no unknown fields, and lives in the release namespace', () => {
    for (const [name, objs] of rendered) {
      assert.ok(objs.length >= 10, `${name}: ${objs.length} objects`);
      const seen = new Set<string>();
      for (const o of objs) {
        const where = `${name}: ${o.kind}/${o.metadata?.name}`;
        const Model = MODELS[`${o.apiVersion}/${o.kind}`];
        assert.ok(Model, `${where}: no schema registered for ${o.apiVersion} ${o.kind}`);
        assert.doesNotThrow(() => new Model(o).validate(), where);
        const problems: string[] = [];
        unknownFields(o, `V1${o.kind}`, o.kind, problems);
        assert.deepEqual(problems, [], where);
        assert.equal(o.metadata.namespace, CLUSTER_SCOPED.has(o.kind) ? undefined : NAMESPACE, `${where}: namespace`);
        assert.match(o.metadata.name, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, where);
        const key = `${o.kind}/${o.metadata.name}`;
        assert.ok(!seen.has(key), `${where}: rendered twice`);
        seen.add(key);
        const labels = o.metadata.labels ?? {};
        assert.equal(labels['app.kubernetes.io/name'], 'rtc-edge', where);
        assert.equal(labels['app.kubernetes.io/instance'], RELEASE, where);
        assert.equal(labels['app.kubernetes.io/managed-by'], 'Helm', where);
        assert.ok(['gateway', 'socket', 'scaler', 'redis', 'config', 'test'].includes(component(o) ?? ''), `${where}: component label`);
        for (const s of o.kind === 'RoleBinding' ? o.subjects : []) assert.equal(s.namespace, NAMESPACE, `${where}: subject namespace`);
      }
      // Workloads select exactly their own pods, and pod templates carry the component label.
      for (const d of objs.filter((o) => o.kind === 'Deployment')) {
        assert.ok(matches(d.spec.selector.matchLabels, podTemplate(d).metadata.labels), `${name}: ${d.metadata.name} selector`);
        assert.equal(podTemplate(d).metadata.labels['app.kubernetes.io/component'], component(d));
        assert.equal(podTemplate(d).metadata.labels['helm.sh/chart'], undefined, 'a chart-only bump must not roll the pods');
        for (const other of objs.filter((o) => o.kind === 'Deployment' && o !== d)) {
          assert.ok(!matches(d.spec.selector.matchLabels, podTemplate(other).metadata.labels), `${d.metadata.name} selects ${other.metadata.name}'s pods`);
        }
      }
      for (const s of objs.filter((o) => o.kind === 'Service')) {
        const targets = objs.filter((o) => o.kind === 'Deployment' && matches(s.spec.selector, podTemplate(o).metadata.labels));
        assert.equal(targets.length, 1, `${name}: Service ${s.metadata.name} selects one Deployment's pods`);
        for (const p of s.spec.ports) portOf(container(targets[0]!, (podTemplate(targets[0]!).spec.containers as any[])[0].name), p.targetPort);
      }
      for (const pdb of objs.filter((o) => o.kind === 'PodDisruptionBudget')) {
        assert.equal(objs.filter((o) => o.kind === 'Deployment' && matches(pdb.spec.selector.matchLabels, podTemplate(o).metadata.labels)).length, 1);
      }
    }
  });

  test('socket: Deployment (no replicas) ↔ headless Service ↔ subdomain ↔ SOCKET_WORKLOAD_NAME; preStop /drain on the admin port; grace ≥ drain + 30 s', () => {
    for (const [name, objs] of rendered) {
      const dep = one(objs, 'Deployment', 'socket');
      const cm = one(objs, 'ConfigMap', 'socket');
      const pod = podTemplate(dep).spec;
      assert.equal('replicas' in dep.spec, false, `${name}: the scaler owns the socket replica count`);
      assert.equal(one(objs, 'ConfigMap', 'scaler').data.SOCKET_WORKLOAD_NAME, dep.metadata.name, `${name}: the scaler's ConfigMap names the socket Deployment`);
      assert.equal(one(objs, 'ConfigMap', 'gateway').data.SOCKET_SERVICE_NAME, dep.metadata.name);
      const svc = objs.find((o) => o.kind === 'Service' && o.metadata.name === pod.subdomain);
      assert.ok(svc, `${name}: subdomain ${pod.subdomain} names a Service`);
      assert.equal(svc.metadata.name, dep.metadata.name);
      assert.match(svc.metadata.name, DNS1123_LABEL, 'a subdomain must be a DNS-1123 label');
      assert.equal(svc.spec.clusterIP, 'None', 'headless');
      assert.ok(matches(svc.spec.selector, podTemplate(dep).metadata.labels), 'the headless Service selects the socket pods');
      const c = container(dep, 'socket');
      assert.deepEqual(c.args, ['socket']);
      assert.equal(portOf(c, 'ws'), Number(cm.data.SOCKET_PORT));
      assert.equal(portOf(c, 'admin'), Number(cm.data.ADMIN_PORT));
      assert.equal(portOf(c, svc.spec.ports[0].targetPort), Number(cm.data.SOCKET_PORT), 'the headless Service points at the WebSocket port');
      const stop = c.lifecycle.preStop.httpGet;
      assert.equal(stop.path, '/drain');
      assert.equal(portOf(c, stop.port), Number(cm.data.ADMIN_PORT), `${name}: preStop port = admin port`);
      assert.equal(c.readinessProbe.httpGet.path, '/readyz');
      assert.equal(portOf(c, c.readinessProbe.httpGet.port), Number(cm.data.ADMIN_PORT));
      // A NotReady pod is the first a scale-in removes: one slow GC pause must not flip it, a drain or retire must within the time the scaler waits.
      const rp = c.readinessProbe;
      assert.ok(rp.failureThreshold >= 2 && rp.timeoutSeconds >= 2, `${name}: one pause of 2 s must not make a socket pod NotReady (${JSON.stringify(rp)})`);
      const flipS = rp.periodSeconds * rp.failureThreshold + rp.timeoutSeconds;
      assert.ok(flipS * 2 <= Number(cm.data.SOCKET_NOT_READY_MAX_MS) / 1000 && flipS * 1000 <= Number(cm.data.DRAIN_WINDOW_MS), `${name}: NotReady within ${flipS} s must fit well inside SOCKET_NOT_READY_MAX_MS and DRAIN_WINDOW_MS`);
      assert.equal(c.livenessProbe.httpGet.path, '/healthz');
      assert.equal(portOf(c, c.livenessProbe.httpGet.port), Number(cm.data.ADMIN_PORT));
      assert.ok(pod.terminationGracePeriodSeconds >= Number(cm.data.DRAIN_TIMEOUT_MS) / 1000 + 30, `${name}: grace ${pod.terminationGracePeriodSeconds}`);
      const fields = Object.fromEntries((c.env as any[]).filter((e) => e.valueFrom?.fieldRef).map((e) => [e.name, e.valueFrom.fieldRef.fieldPath]));
      assert.deepEqual(fields, { POD_NAME: 'metadata.name', POD_IP: 'status.podIP', POD_NAMESPACE: 'metadata.namespace' });
      assert.equal(pod.automountServiceAccountToken, false, 'socket pods need no API access');
      assert.equal(pod.enableServiceLinks, false, 'a Service named `socket` would inject SOCKET_PORT=tcp://…');
      assert.equal(dep.spec.strategy.rollingUpdate.maxUnavailable, 0);
    }
    assert.equal(one(rendered.get('default values')!, 'Deployment', 'socket').metadata.name, 'socket');
    assert.equal(podTemplate(one(rendered.get('default values')!, 'Deployment', 'socket')).spec.terminationGracePeriodSeconds, 330);
  });

  test('the role ConfigMaps together hold every DESIGN.md variable; with default values they equal src/config.ts DEFAULTS', () => {
    const ROLES = ['gateway', 'socket', 'scaler'];
    for (const [name, objs] of rendered) {
      const union: Record<string, string> = {};
      for (const role of ROLES) {
        const cm = one(objs, 'ConfigMap', role);
        for (const [k, v] of Object.entries(cm.data)) {
          assert.equal(typeof v, 'string', `${k} must be a string`);
          if (k !== 'ADMIN_PORT') assert.ok(!(k in union) || union[k] === v, `${name}: ${k} differs between role ConfigMaps`);
          union[k] = v as string;
        }
      }
      for (const key of Object.keys(DEFAULTS)) {
        if (key === 'POD_NAMESPACE' || (key === 'REDIS_URL' && name !== 'default values')) continue; // downward API; a Secret
        assert.ok(key in union, `${name}: no role ConfigMap holds ${key}`);
      }
    }
    const objs = rendered.get('default values')!;
    for (const role of ROLES) {
      const cm = one(objs, 'ConfigMap', role);
      for (const [key, value] of Object.entries(cm.data)) if (key in DEFAULTS && key !== 'REDIS_URL') assert.equal(value, DEFAULTS[key as keyof typeof DEFAULTS], `default ${key} (${role})`);
    }
    assert.equal(one(objs, 'ConfigMap', 'scaler').data.SOCKET_WORKLOAD_NAME, 'socket');
    assert.equal(one(objs, 'ConfigMap', 'scaler').data.SOCKET_MIN_REPLICAS, '2');
    assert.equal(one(objs, 'ConfigMap', 'scaler').data.SOCKET_MAX_REPLICAS, '50');
  });

  test("each role's ConfigMap holds every variable its code reads, and the socket's nothing it does not read", () => {
    const reads = variablesReadByRole();
    const objs = rendered.get('default values')!;
    for (const role of ['gateway', 'socket', 'scaler'] as const) {
      const keys = new Set(Object.keys(one(objs, 'ConfigMap', role).data));
      // POD_* come from the downward API on every pod.
      // A variable without a default is left out while its value is empty (unset means "none"), e.g. SOCKET_HANDLER.
      const optional = (k: string) => !(DEFAULTS as Record<string, string | undefined>)[k];
      const missing = [...reads[role]].filter((k) => !k.startsWith('POD_') && !keys.has(k) && !optional(k));
      assert.deepEqual(missing, [], `the ${role} reads these but its ConfigMap lacks them`);
    }
    const extra = Object.keys(one(objs, 'ConfigMap', 'socket').data).filter((k) => !reads.socket.has(k));
    assert.deepEqual(extra, [], 'the socket ConfigMap holds variables the socket does not read (a change would drain every socket pod for nothing)');
    assert.ok(reads.gateway.has('GATEWAY_MAX_CONNECTIONS') && reads.scaler.has('SCALER_INTERVAL_MS') && reads.socket.has('DRAIN_TIMEOUT_MS') && reads.socket.has('LOG_LEVEL'), 'the scan finds known reads');
  });

  test('a gateway-only and a scaler-only change leave the socket pod template unchanged (no fleet-wide drain); a socket change rolls it', () => {
    const socketTemplate = (objs: Obj[]) => podTemplate(one(objs, 'Deployment', 'socket'));
    const checksum = (objs: Obj[], role: string) => podTemplate(one(objs, 'Deployment', role)).metadata.annotations?.['checksum/config'];
    const base = rendered.get('default values')!;
    const changed = render([], ['config.GATEWAY_MAX_CONNECTIONS=4000', 'config.GATEWAY_DRAIN_MS=20000', 'gateway.terminationGracePeriodSeconds=40', 'config.SCALER_INTERVAL_MS=7000', 'config.SOCKET_MIN_REPLICAS=3']);
    assert.equal(changed.status, 0, changed.stderr);
    assert.deepEqual(socketTemplate(changed.objects), socketTemplate(base), 'the socket pod template did not change');
    assert.notEqual(checksum(changed.objects, 'gateway'), checksum(base, 'gateway'), 'the gateway rolls for its own setting');
    assert.notEqual(checksum(changed.objects, 'scaler'), checksum(base, 'scaler'), 'the scaler rolls for its own setting');
    const sock = render([], ['config.DRAIN_WINDOW_MS=30000']);
    assert.equal(sock.status, 0, sock.stderr);
    assert.notEqual(checksum(sock.objects, 'socket'), checksum(base, 'socket'), 'a socket setting rolls the socket pods');
    assert.equal(checksum(sock.objects, 'gateway'), checksum(base, 'gateway'), 'and not the gateway');
  });

  test('every role starts from the rendered environment: the real loadConfig accepts it and agrees with the manifests', () => {
    for (const [name, objs] of rendered) {
      const sock = one(objs, 'Deployment', 'socket');
      for (const comp of ['gateway', 'socket', 'scaler'] as const) {
        const dep = one(objs, 'Deployment', comp);
        const c = container(dep, comp);
        assert.deepEqual(c.args, [comp]);
        assert.equal(c.image, container(sock, 'socket').image, 'one image for every role');
        const env = containerEnv(objs, c, `${dep.metadata.name}-5d8f7c9b4-x2x7k`);
        let cfg;
        try {
          cfg = loadConfig(env, comp as EdgeRole);
        } catch (err) {
          assert.fail(`${name}: ${comp} would not start: ${(err as Error).message}`);
        }
        if (comp === 'scaler') assert.equal(cfg.socketWorkloadName, sock.metadata.name);
        assert.equal(cfg.podNamespace, NAMESPACE);
        assert.ok(cfg.redisUrl, `${name}: ${comp} has a registry (REDIS_URL)`);
        parseRedisUrl(cfg.redisUrl);
        if (comp === 'gateway') assert.equal(cfg.gatewayPort, portOf(c, 'http'));
        if (comp === 'socket') {
          assert.equal(cfg.socketPort, portOf(c, 'ws'));
          assert.equal(cfg.adminPort, portOf(c, 'admin'));
        }
        if (comp === 'scaler') {
          assert.equal(cfg.adminPort, portOf(c, 'admin'));
          assert.equal(cfg.scalerWorkload, 'kubernetes');
          assert.equal(c.readinessProbe.httpGet.path, '/healthz');
        }
        if (comp === 'gateway' && cfg.gatewayResolver === 'dns') {
          assert.equal(cfg.gatewayDnsTemplate, `{podId}.${sock.metadata.name}.${NAMESPACE}.svc.cluster.example:${cfg.socketPort}`);
        }
      }
    }
  });

  test('scaler: 2 replicas on their own ServiceAccount; the Role grants exactly the API calls the scaler makes', () => {
    assert.ok(scalerUse.used.length > 0, 'the scaler made no recorded API calls');
    for (const [name, objs] of rendered) {
      const dep = one(objs, 'Deployment', 'scaler');
      assert.equal(dep.spec.replicas, 2);
      const sa = one(objs, 'ServiceAccount', 'scaler');
      assert.equal(podTemplate(dep).spec.serviceAccountName, sa.metadata.name);
      const role = one(objs, 'Role', 'scaler');
      const binding = one(objs, 'RoleBinding', 'scaler');
      assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role.metadata.name });
      assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: NAMESPACE }]);
      const granted = ruleTriples(role);
      // Both ways, against two recordings: the scaler's own test session (test/support/scaler-session.ts) and a
      // session driven here with the chart's rendered scaler environment (two replicas, out, in, hand-over).
      assert.deepEqual([...granted.keys()].sort(), scalerSession.verbs.map(useKey).sort(), `${name}: Role rules ≠ the calls of the scaler's recorded session`);
      assert.deepEqual([...granted.keys()].sort(), scalerUse.used.map(useKey).sort(), `${name}: Role rules ≠ the calls of the scaler run with the chart's environment`);
      // Where a rule pins resourceNames, every recorded call of that kind used one of those names.
      const cm = one(objs, 'ConfigMap', 'scaler');
      const expectName: Record<string, string> = { 'apps|deployments': cm.data.SOCKET_WORKLOAD_NAME, 'apps|deployments/scale': cm.data.SOCKET_WORKLOAD_NAME, 'coordination.k8s.io|leases': cm.data.SCALER_LEASE_NAME };
      for (const [key, names] of granted) {
        if (!names) continue;
        const gr = key.split('|').slice(0, 2).join('|');
        assert.deepEqual(names, [expectName[gr]], `${name}: ${key} resourceNames`);
        // The scenario ran with the default values' names, which this variant may have changed.
        if (name !== 'default values') continue;
        const calls = scalerUse.requests.filter((r) => `${r.apiGroup}|${r.subresource ? `${r.resource}/${r.subresource}` : r.resource}|${r.verb}` === key);
        assert.ok(calls.length > 0);
        for (const r of calls) assert.ok(names.includes(r.name ?? ''), `${key} called on ${r.name ?? '(no name)'}, but the Role allows only ${names.join(', ')}`);
      }
      // No other workload gets API credentials unless it needs them.
      for (const comp of ['socket', 'redis']) {
        for (const d of find(objs, 'Deployment', comp)) assert.equal(podTemplate(d).spec.automountServiceAccountToken, false);
      }
    }
  });

  test('gateway: 2 replicas, probes, Service, PDB; API access (exactly EndpointSlices list/watch) only with GATEWAY_RESOLVER=endpointslices', () => {
    assert.ok(gatewayUse.used.length > 0, 'the endpointslices resolver made no recorded API calls');
    let sawApi = false;
    for (const [name, objs] of rendered) {
      const cm = one(objs, 'ConfigMap', 'gateway');
      const dep = one(objs, 'Deployment', 'gateway');
      const c = container(dep, 'gateway');
      assert.ok(dep.spec.replicas >= 2);
      assert.equal(c.readinessProbe.httpGet.path, '/readyz');
      assert.equal(c.livenessProbe.httpGet.path, '/healthz');
      const { client: svc, admin } = gatewayServices(objs);
      assert.ok(matches(svc.spec.selector, podTemplate(dep).metadata.labels));
      // Only /ws/* faces clients: the admin port is on its own ClusterIP Service whatever the client Service type.
      assert.deepEqual((svc.spec.ports as any[]).map((p) => p.targetPort), ['http'], `${name}: the client Service exposes only the client port`);
      assert.equal(admin.spec.type, 'ClusterIP', `${name}: admin Service type`);
      assert.deepEqual((admin.spec.ports as any[]).map((p) => [p.targetPort, p.nodePort]), [['admin', undefined]]);
      assert.ok(matches(admin.spec.selector, podTemplate(dep).metadata.labels));
      assert.equal(portOf(c, 'admin'), Number(cm.data.GATEWAY_ADMIN_PORT));
      assert.notEqual(portOf(c, 'admin'), portOf(c, 'http'));
      assert.equal(one(objs, 'PodDisruptionBudget', 'gateway').spec.minAvailable, 1);
      const grace = podTemplate(dep).spec.terminationGracePeriodSeconds;
      assert.ok(grace >= Number(cm.data.GATEWAY_DRAIN_MS) / 1000, `${name}: gateway grace ${grace} < GATEWAY_DRAIN_MS`);
      const roles = find(objs, 'Role', 'gateway');
      if (cm.data.GATEWAY_RESOLVER === 'endpointslices') {
        sawApi = true;
        assert.equal(roles.length, 1);
        const sa = one(objs, 'ServiceAccount', 'gateway');
        assert.equal(podTemplate(dep).spec.serviceAccountName, sa.metadata.name);
        assert.notEqual(podTemplate(dep).spec.automountServiceAccountToken, false);
        const binding = one(objs, 'RoleBinding', 'gateway');
        assert.equal(binding.roleRef.name, roles[0]!.metadata.name);
        assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: NAMESPACE }]);
        assert.deepEqual([...ruleTriples(roles[0]!).keys()].sort(), gatewayUse.used.map(useKey).sort(), `${name}: gateway Role ≠ the resolver's calls`);
      } else {
        assert.equal(roles.length, 0, `${name}: no gateway Role without the endpointslices resolver`);
        assert.equal(find(objs, 'ServiceAccount', 'gateway').length, 0);
        assert.equal(podTemplate(dep).spec.automountServiceAccountToken, false);
      }
    }
    assert.ok(sawApi, 'a ci variant covers GATEWAY_RESOLVER=endpointslices');
    const svcType = (v: string) => gatewayServices(rendered.get(v)!).client.spec.type;
    assert.equal(svcType('default values'), 'ClusterIP');
    assert.equal(svcType('ci/existing-secret-values.yaml'), 'LoadBalancer');
    assert.equal(gatewayServices(rendered.get('ci/existing-secret-values.yaml')!).client.spec.externalTrafficPolicy, 'Local');
  });

  test('ingress variant: WebSocket-friendly timeouts, routes to the gateway Service', () => {
    assert.equal(find(rendered.get('default values')!, 'Ingress', 'gateway').length, 0, 'off by default');
    const objs = rendered.get('ci/ingress-values.yaml')!;
    const ing = one(objs, 'Ingress', 'gateway');
    assert.equal(ing.metadata.annotations?.['nginx.ingress.kubernetes.io/proxy-read-timeout'], '3600');
    assert.equal(ing.metadata.annotations?.['nginx.ingress.kubernetes.io/proxy-send-timeout'], '3600');
    assert.equal(ing.spec.ingressClassName, 'nginx');
    assert.deepEqual(ing.spec.tls, [{ secretName: 'rtc-example-com-tls', hosts: ['rtc.example.com'] }]);
    // Only /ws/ is routed, to the client-facing port.
    assert.deepEqual(ing.spec.rules[0].http.paths.map((p: any) => [p.path, p.pathType]), [['/ws/', 'Prefix']]);
    const backend = ing.spec.rules[0].http.paths[0].backend.service;
    const svc = gatewayServices(objs).client;
    assert.equal(backend.name, svc.metadata.name);
    assert.equal(backend.port.name, 'http');
    assert.ok((svc.spec.ports as any[]).some((p) => p.name === backend.port.name));
  });

  test('Redis: bundled (no persistence) or external through a Secret; Sentinel and Cluster URLs pass through', () => {
    const def = rendered.get('default values')!;
    const redis = one(def, 'Deployment', 'redis');
    const rc = container(redis, 'redis');
    assert.match(rc.image, /^redis:7-alpine$/);
    assert.deepEqual(rc.args.slice(2), ['--requirepass', '$(REDIS_PASSWORD)', '--save', '', '--appendonly', 'no']);
    const rsvc = one(def, 'Service', 'redis');
    for (const role of ['gateway', 'socket', 'scaler']) assert.equal(one(def, 'ConfigMap', role).data.REDIS_URL, `redis://${rsvc.metadata.name}:${rsvc.spec.ports[0].port}`, 'the ConfigMap URL holds no password');

    // requirepass from a generated Secret; every role reads the same Secret as REDIS_PASSWORD, which the app merges into REDIS_URL.
    const auth = def.find((o) => o.kind === 'Secret' && o.metadata.name === `${RELEASE}-redis-auth`);
    assert.ok(auth, 'the password Secret is rendered');
    const password = auth.stringData['redis-password'] as string;
    assert.match(password, /^[A-Za-z0-9]{32}$/);
    const authRef = { name: auth.metadata.name, key: 'redis-password' };
    assert.deepEqual(rc.env, [{ name: 'REDIS_PASSWORD', valueFrom: { secretKeyRef: authRef } }, { name: 'REDISCLI_AUTH', value: '$(REDIS_PASSWORD)' }], 'the probe\'s redis-cli authenticates too');
    for (const comp of ['gateway', 'socket', 'scaler']) {
      const c = container(one(def, 'Deployment', comp), comp);
      assert.deepEqual((c.env as any[]).find((e) => e.name === 'REDIS_PASSWORD')?.valueFrom?.secretKeyRef, authRef, comp);
      const cfg = loadConfig(containerEnv(def, c, `${comp}-5d8f7c9b4-x2x7k`), comp as EdgeRole);
      assert.equal(cfg.redisUrl, `redis://:${password}@${rsvc.metadata.name}:${rsvc.spec.ports[0].port}`, comp);
    }
    const ownAuth = render([], ['redis.auth.existingSecret=my-redis-auth', 'redis.auth.existingSecretKey=password']);
    assert.equal(ownAuth.status, 0, ownAuth.stderr);
    assert.equal(ownAuth.objects.filter((o) => o.kind === 'Secret').length, 0, 'redis.auth.existingSecret: no Secret rendered');
    for (const comp of ['redis', 'gateway', 'socket', 'scaler']) {
      const env = container(one(ownAuth.objects, 'Deployment', comp), comp).env as any[];
      assert.deepEqual(env.find((e) => e.name === 'REDIS_PASSWORD').valueFrom.secretKeyRef, { name: 'my-redis-auth', key: 'password' }, comp);
    }
    const noAuth = render([], ['redis.auth.enabled=false']);
    assert.equal(noAuth.status, 0, noAuth.stderr);
    assert.deepEqual(container(one(noAuth.objects, 'Deployment', 'redis'), 'redis').args.slice(2), ['--save', '', '--appendonly', 'no']);
    assert.equal(noAuth.objects.filter((o) => o.kind === 'Secret').length, 0);
    for (const comp of ['gateway', 'socket', 'scaler']) assert.ok(!JSON.stringify(container(one(noAuth.objects, 'Deployment', comp), comp).env).includes('REDIS_PASSWORD'), comp);
    // An external Redis over TLS: rediss:// passes through its Secret untouched, with no REDIS_PASSWORD beside it.
    const tls = render([], ['redis.enabled=false', 'redis.url=rediss://app:tls-pw@redis.example:6380/1']);
    assert.equal(tls.status, 0, tls.stderr);
    for (const comp of ['gateway', 'socket', 'scaler']) {
      const c = container(one(tls.objects, 'Deployment', comp), comp);
      assert.ok(!(c.env as any[]).some((e) => e.name === 'REDIS_PASSWORD'), comp);
      assert.equal(loadConfig(containerEnv(tls.objects, c, `${comp}-5d8f7c9b4-x2x7k`), comp as EdgeRole).redisUrl, 'rediss://app:tls-pw@redis.example:6380/1');
    }

    const ext = rendered.get('ci/external-redis-values.yaml')!;
    assert.equal(find(ext, 'Deployment', 'redis').length, 0);
    for (const role of ['gateway', 'socket', 'scaler']) assert.equal('REDIS_URL' in one(ext, 'ConfigMap', role).data, false, 'a URL with a password stays out of the ConfigMaps');
    const secret = one(ext, 'Secret', 'redis');
    const target = parseRedisUrl(secret.stringData.REDIS_URL);
    assert.equal(target.mode, 'sentinel');
    for (const comp of ['gateway', 'socket', 'scaler']) {
      const ref = (container(one(ext, 'Deployment', comp), comp).env as any[]).find((e) => e.name === 'REDIS_URL').valueFrom.secretKeyRef;
      assert.deepEqual(ref, { name: secret.metadata.name, key: 'REDIS_URL' });
    }
    const exs = rendered.get('ci/existing-secret-values.yaml')!;
    assert.equal(find(exs, 'Secret', 'redis').length, 0);
    const ref = (container(one(exs, 'Deployment', 'socket'), 'socket').env as any[]).find((e) => e.name === 'REDIS_URL').valueFrom.secretKeyRef;
    assert.deepEqual(ref, { name: 'rtc-edge-redis', key: 'url' });
  });

  test('NetworkPolicies: ws port only from gateway pods, every admin port only from node CIDRs / the metrics namespace / extra peers (no scaler → socket rule), egress DNS + Redis (+ socket pods for the gateway, the API server for the scaler), Redis only from our pods', () => {
    for (const [name, objs] of rendered) {
      const policies = objs.filter((o) => o.kind === 'NetworkPolicy');
      if (name === 'ci/existing-secret-values.yaml') {
        assert.equal(policies.length, 0, 'networkPolicy.enabled=false');
        continue;
      }
      const external = name === 'ci/external-redis-values.yaml';
      const podsOf = (comp: string) => podTemplate(one(objs, 'Deployment', comp)).metadata.labels;
      const policyOf = (comp: string) => {
        const found = policies.filter((p) => matches(p.spec.podSelector.matchLabels, podsOf(comp)));
        assert.equal(found.length, 1, `${name}: one policy selects the ${comp} pods`);
        assert.deepEqual(found[0]!.spec.policyTypes, ['Ingress', 'Egress'], `${name}: ${comp} ingress and egress`);
        return found[0]!;
      };
      const sock = one(objs, 'Deployment', 'socket');
      const pol = policyOf('socket');
      const c = container(sock, 'socket');
      const byPort = new Map<number, any[]>();
      for (const rule of pol.spec.ingress) {
        assert.ok(rule.from?.length > 0, 'every rule names its peers');
        for (const p of rule.ports) byPort.set(portOf(c, p.port), [...(byPort.get(portOf(c, p.port)) ?? []), ...rule.from]);
      }
      const wsPeers = byPort.get(portOf(c, 'ws'))!;
      assert.equal(wsPeers.length, 1);
      assert.ok(matches(wsPeers[0].podSelector.matchLabels, podsOf('gateway')) && !wsPeers[0].namespaceSelector && !wsPeers[0].ipBlock);
      const adminPeers = byPort.get(portOf(c, 'admin')) ?? [];
      assert.deepEqual(adminPeers.filter((p) => p.podSelector && !p.namespaceSelector), [], `${name}: no pod of ours calls the socket admin port (the scaler retires pods through the registry)`);
      // The metrics peers: Prometheus' namespace (metricsNamespace) and adminExtraFrom, on every role's admin port.
      const metricsPeers = (peers: any[]) => peers.filter((p) => p.namespaceSelector).map((p) => JSON.stringify(p)).sort();
      if (external) {
        assert.deepEqual(adminPeers.filter((p) => p.ipBlock).map((p) => p.ipBlock.cidr), ['10.0.0.0/16']);
        assert.equal(metricsPeers(adminPeers).length, 2);
        assert.ok(adminPeers.some((p) => p.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === 'monitoring' && !p.podSelector), 'the whole metrics namespace');
      } else {
        assert.deepEqual([...byPort.keys()], [portOf(c, 'ws')], `${name}: without peers the admin port is left to the node`);
      }
      const scPol = policyOf('scaler');
      const scPeers = (scPol.spec.ingress as any[]).flatMap((r) => r.from);
      assert.deepEqual(metricsPeers(scPeers), metricsPeers(adminPeers), `${name}: the scaler's /metrics admits the same peers`);

      // Egress: DNS and the registry for all; socket pods for the gateway; the API server for the scaler only
      // (and for the gateway with the endpointslices resolver).
      const egress = (comp: string) => policyOf(comp).spec.egress as any[];
      const ports = (r: any) => (r.ports as any[]).map((p) => `${p.protocol}/${p.port}`).sort();
      const apiPorts = ['TCP/443', 'TCP/6443'];
      for (const comp of ['gateway', 'socket', 'scaler']) {
        const rules = egress(comp);
        assert.ok(rules.some((r) => r.to?.[0]?.podSelector?.matchLabels?.['k8s-app'] === 'kube-dns' && ports(r).join() === 'TCP/53,UDP/53'), `${name}: ${comp} reaches DNS`);
        if (external) assert.ok(rules.some((r) => ports(r).join() === 'TCP/26379,TCP/6379' && r.to?.[0]?.ipBlock?.cidr === '10.1.0.0/16'), `${name}: ${comp} reaches the external Redis`);
        else if (find(objs, 'Deployment', 'redis').length === 0) assert.ok(rules.some((r) => ports(r).join() === 'TCP/26379,TCP/6379' && !r.to), `${name}: ${comp} reaches an external Redis anywhere on its ports`);
        else assert.ok(rules.some((r) => matches(r.to?.[0]?.podSelector?.matchLabels ?? {}, podsOf('redis'))), `${name}: ${comp} reaches the bundled Redis`);
        const api = rules.filter((r) => ports(r).join() === apiPorts.join());
        const wantsApi = comp === 'scaler' || (comp === 'gateway' && name === 'ci/endpointslices-values.yaml');
        assert.equal(api.length, wantsApi ? 1 : 0, `${name}: ${comp} ${wantsApi ? 'reaches' : 'does not reach'} the API server`);
        if (wantsApi && external) assert.deepEqual(api[0].to.map((t: any) => t.ipBlock.cidr), ['10.96.0.1/32']);
      }
      const toSockets = egress('gateway').filter((r) => r.to?.some((t: any) => matches(t.podSelector?.matchLabels ?? {}, podsOf('socket'))));
      assert.deepEqual(toSockets.map(ports), [[`TCP/${portOf(c, 'ws')}`]], `${name}: the gateway reaches the socket pods' WebSocket port only`);
      const redisPods = find(objs, 'Deployment', 'redis').length > 0 ? podsOf('redis') : {};
      assert.equal(egress('socket').some((r) => r.to?.some((t: any) => t.podSelector && !matches(t.podSelector.matchLabels ?? {}, redisPods) && !t.namespaceSelector)), false, 'socket pods dial no other pod of ours');
      // Gateway pods: the client port from anywhere, the admin port only from networkPolicy.adminExtraFrom.
      const gwDep = one(objs, 'Deployment', 'gateway');
      const gwPol = [policyOf('gateway')];
      const gc = container(gwDep, 'gateway');
      const gwRules = gwPol[0]!.spec.ingress.map((r: any) => ({ ports: r.ports.map((p: any) => portOf(gc, p.port)), from: r.from }));
      assert.deepEqual(gwRules.filter((r: any) => r.ports.includes(portOf(gc, 'http'))), [{ ports: [portOf(gc, 'http')], from: undefined }], `${name}: client port open to all`);
      const gwAdmin = gwRules.filter((r: any) => r.ports.includes(portOf(gc, 'admin')));
      if (name === 'ci/external-redis-values.yaml') {
        assert.equal(gwAdmin.length, 1);
        assert.deepEqual(metricsPeers(gwAdmin[0].from), metricsPeers(adminPeers), 'only the metrics peers');
      } else {
        assert.equal(gwAdmin.length, 0, `${name}: the gateway admin port is open to no peer without adminExtraFrom`);
      }
      const redisPol = policies.filter((p) => component(p) === 'redis');
      if (find(objs, 'Deployment', 'redis').length === 0) {
        assert.equal(redisPol.length, 0);
        continue;
      }
      assert.equal(redisPol.length, 1);
      assert.ok(matches(redisPol[0]!.spec.podSelector.matchLabels, podsOf('redis')));
      const peers = redisPol[0]!.spec.ingress.flatMap((r: any) => r.from);
      const allowed = peers.map((p: any) => ['gateway', 'socket', 'scaler', 'redis'].filter((comp) => matches(p.podSelector.matchLabels, podsOf(comp))));
      assert.deepEqual(allowed, [['gateway'], ['socket'], ['scaler']]);
    }
  });

  test('helm test pod: runs files/ws-check.mjs from the rtc-edge image against the gateway Service', () => {
    const objs = rendered.get('default values')!;
    // `helm test --logs` reads pod logs for every test hook by name: every test hook must be a Pod.
    const hooks = objs.filter((o) => o.metadata.annotations?.['helm.sh/hook'] === 'test');
    assert.deepEqual(hooks.map((o) => o.kind), ['Pod']);
    const pod = one(objs, 'Pod', 'test');
    assert.equal(pod.metadata.annotations?.['helm.sh/hook-delete-policy'], 'before-hook-creation,hook-succeeded', 'a passed test pod must not outlive the release');
    assert.equal(pod.spec.restartPolicy, 'Never');
    const c = pod.spec.containers[0];
    assert.equal(c.image, container(one(objs, 'Deployment', 'gateway'), 'gateway').image);
    const svc = gatewayServices(objs).client;
    assert.equal(c.env.find((e: any) => e.name === 'GATEWAY_URL').value, `http://${svc.metadata.name}:${svc.spec.ports[0].port}`);
    const script = fs.readFileSync(path.join(CHART, 'files/ws-check.mjs'), 'utf8');
    assert.deepEqual(c.command, ['node', '--input-type=module', '-e', script]);
  });

  test('values.schema.json and template checks reject bad values with a clear message', () => {
    const bad: [string[], RegExp][] = [
      [['gateway.replicaCount=-1'], /gateway\/replicaCount.*minimum/],
      [['scaler.replicaCount=two'], /scaler\/replicaCount/],
      [['socket.replicas=3'], /additional properties 'replicas' not allowed/],
      [['gatway.replicaCount=2'], /additional properties 'gatway' not allowed/],
      [['config.SOCKET_WORKLOAD_NAME=other'], /additional properties 'SOCKET_WORKLOAD_NAME' not allowed/],
      [['config.GATEWAY_RESOLVER=nginx'], /GATEWAY_RESOLVER/],
      [['config.SOCKET_IDLE_TIMEOUT_S=10'], /SOCKET_IDLE_TIMEOUT_S/],
      [['socket.name=Socket_1'], /socket\/name/],
      [['redis.enabled=false', 'redis.url=http://redis:6379'], /redis\/url/],
      [['socket.terminationGracePeriodSeconds=300'], /terminationGracePeriodSeconds=300 is too short: it must be at least .* = 330/],
      [['config.DRAIN_TIMEOUT_MS=600000'], /at least .* = 630/],
      [['config.SOCKET_MIN_REPLICAS=60'], /SOCKET_MIN_REPLICAS=60 is greater than config.SOCKET_MAX_REPLICAS=50/],
      [['redis.enabled=false'], /needs redis.url/],
      [['redis.url=redis://elsewhere:6379'], /set redis.enabled=false/],
      [['socket.adminPort=8080'], /must differ/],
      [['gateway.adminPort=8080'], /gateway.port and gateway.adminPort must differ/],
      [['gateway.podCIDRs={10.0.0.0/8,pods.local}'], /gateway\/podCIDRs/],
    ];
    for (const [sets, message] of bad) {
      const r = render([], sets);
      assert.notEqual(r.status, 0, `--set ${sets.join(' ')} was accepted`);
      assert.match(r.stderr, message, `--set ${sets.join(' ')}`);
    }
    // A single gateway pod gets no PodDisruptionBudget (minAvailable: 1 would block node drains).
    const single = render([], ['gateway.replicaCount=1']);
    assert.equal(single.status, 0, single.stderr);
    assert.equal(find(single.objects, 'PodDisruptionBudget', 'gateway').length, 0);
    // The same mechanisms accept good changes.
    const ok = render([], ['config.DRAIN_TIMEOUT_MS=600000', 'socket.terminationGracePeriodSeconds=630', 'config.SOCKET_IDLE_TIMEOUT_S=0']);
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(one(ok.objects, 'ConfigMap', 'socket').data.DRAIN_TIMEOUT_MS, '600000');
    // gateway.podCIDRs fills GATEWAY_POD_CIDRS, which the gateway's real loadConfig accepts.
    const cidrs = render([], ['gateway.podCIDRs={10.244.0.0/16,fd00:10:244::/56}']);
    assert.equal(cidrs.status, 0, cidrs.stderr);
    const gw = container(one(cidrs.objects, 'Deployment', 'gateway'), 'gateway');
    assert.deepEqual(loadConfig(containerEnv(cidrs.objects, gw, 'rtc-edge-gateway-5d8f7c9b4-x2x7k'), 'gateway').gatewayPodCidrs, ['10.244.0.0/16', 'fd00:10:244::/56']);
    // gateway.workers: GATEWAY_WORKERS from the CPU limit (rounded up, through the downward API), a value, or 1 without a limit.
    const workers = (sets: string[]) => {
      const r = render([], sets);
      assert.equal(r.status, 0, r.stderr);
      return loadConfig(containerEnv(r.objects, container(one(r.objects, 'Deployment', 'gateway'), 'gateway'), 'rtc-edge-gateway-5d8f7c9b4-x2x7k'), 'gateway').gatewayWorkers;
    };
    assert.equal(workers([]), 1, 'no CPU limit: one process, not one per node core');
    assert.equal(workers(['gateway.resources.limits.cpu=1500m']), 2);
    assert.equal(workers(['gateway.resources.limits.cpu=4']), 4);
    assert.equal(workers(['gateway.workers=3', 'gateway.resources.limits.cpu=1']), 3);
    assert.notEqual(render([], ['gateway.workers=0']).status, 0, 'the schema refuses 0 workers');
    // The socket node trusts the gateways' X-Forwarded-For: socket.trustedProxies, else the pod network of gateway.podCIDRs.
    const socketTrust = (objs: Obj[]) => loadConfig(containerEnv(objs, container(one(objs, 'Deployment', 'socket'), 'socket'), 'socket-5d8f7c9b4-x2x7k'), 'socket').socketTrustedProxies;
    assert.deepEqual(socketTrust(rendered.get('default values')!), [], 'trust no one by default');
    assert.deepEqual(socketTrust(cidrs.objects), ['10.244.0.0/16', 'fd00:10:244::/56']);
    const own = render([], ['gateway.podCIDRs={10.244.0.0/16}', 'socket.trustedProxies={10.244.7.0/24}']);
    assert.equal(own.status, 0, own.stderr);
    assert.deepEqual(socketTrust(own.objects), ['10.244.7.0/24']);
  });

  test('NOTES.txt: how to reach the gateway (per Service type / Ingress) and how to watch scaling', () => {
    // helm template does not print NOTES.txt; render it through `tpl` in a throw-away copy of the chart.
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rtc-edge-notes-'));
    try {
      const chart = path.join(tmp, 'rtc-edge');
      fs.cpSync(CHART, chart, { recursive: true });
      fs.copyFileSync(path.join(chart, 'templates/NOTES.txt'), path.join(chart, 'notes-preview.txt'));
      fs.writeFileSync(path.join(chart, 'templates/zz-notes-preview.yaml'),
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes-preview\ndata:\n  notes: {{ tpl (.Files.Get "notes-preview.txt") . | toJson }}\n');
      const notes = (variant: string) => {
        const files = VARIANTS.find((v) => v.name === variant)!.files;
        const r = helm(['template', RELEASE, chart, '--namespace', NAMESPACE, '--kube-version', KUBE_VERSION, '--show-only', 'templates/zz-notes-preview.yaml', ...files.flatMap((f) => ['-f', f])]);
        assert.equal(r.status, 0, r.stderr);
        return (parseDocument(r.stdout).toJS() as { data: { notes: string } }).data.notes;
      };
      const def = notes('default values');
      assert.match(def, /kubectl port-forward -n rtc service\/rtc-edge-gateway 8080:80/);
      assert.match(def, /curl -s http:\/\/127\.0\.0\.1:8080\/ws\/assign/);
      assert.match(def, /kubectl port-forward -n rtc service\/rtc-edge-gateway-admin 9090:9090\n.*live status page\n.*\/api\/pods/);
      assert.doesNotMatch(def, /8080\/api\/pods/, 'the client port does not serve /api/pods');
      assert.match(def, /kubectl get deployment socket -n rtc --watch/);
      assert.match(def, /app\.kubernetes\.io\/component=scaler -f .*\n.*Scaling Deployment\|Successfully scaled/);
      assert.match(def, /controller\.kubernetes\.io\/pod-deletion-cost/);
      assert.match(def, /helm test rtc-edge -n rtc .*kubectl logs -n rtc rtc-edge-test/);
      assert.match(def, /kubectl get secret rtc-edge-redis-auth -n rtc -o jsonpath='\{\.data\.redis-password\}' \| base64 -d/, 'how to read the Redis password');
      assert.match(notes('ci/ingress-values.yaml'), /curl -s https:\/\/rtc\.example\.com\/ws\/assign/);
      assert.match(notes('ci/existing-secret-values.yaml'), /kubectl get service rtc-edge-gateway -n rtc --watch/);
      assert.match(notes('ci/dns-resolver-values.yaml'), /endpoint_pod_names/);
      assert.match(notes('ci/endpointslices-values.yaml'), /kubectl get deployment rtc-socket -n rtc --watch/);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  test('README and NOTES show the scaler log lines the real scaler writes, and their jq filter selects them', () => {
    const shape = (line: string) => line.replace(/\bsocket-[a-z0-9]+(-[a-z0-9]+)*/g, 'POD').replace(/\d+/g, 'N').trim();
    const real = scalerSession.messages.filter((m) => /Scaling Deployment|Successfully scaled|scale-in removed/.test(m));
    for (const kind of ['Scaling Deployment', 'Successfully scaled', 'scale-in removed']) assert.ok(real.some((m) => m.includes(kind)), `the session logged no "${kind}" line`);
    const shapes = new Set(real.map(shape));
    const readme = fs.readFileSync(path.join(CHART, 'README.md'), 'utf8');
    const samples = [...readme.matchAll(/^# ((?:✓ )?(?:Scaling Deployment|Successfully scaled|scale-in removed).*)$/gm)].map((m) => m[1]!);
    assert.ok(samples.length >= 3, 'README shows sample scaler lines');
    assert.ok(samples.includes('Scaling Deployment socket from 2 to 5 replicas') && samples.includes('✓ Successfully scaled Deployment socket to 5 replicas'));
    for (const sample of samples) assert.ok(shapes.has(shape(sample)), `README sample "${sample}" is not a line the scaler writes (it writes: ${[...shapes].join(' | ')})`);
    // The jq filter of README and NOTES.txt selects exactly these lines.
    const notes = fs.readFileSync(path.join(CHART, 'templates/NOTES.txt'), 'utf8');
    for (const text of [readme, notes]) {
      const filter = /test\("([^"]+)"\)/.exec(text);
      assert.ok(filter, 'a jq test("...") filter');
      const re = new RegExp(filter[1]!);
      assert.ok(real.every((m) => re.test(m)));
      assert.ok(scalerSession.messages.filter((m) => re.test(m)).length === real.length);
    }
  });

  test('every value is documented in values.yaml and in the README values table, and nothing else is', () => {
    const doc = parseDocument(fs.readFileSync(path.join(CHART, 'values.yaml'), 'utf8'));
    const documented: string[] = [];
    const undocumented: string[] = [];
    const walk = (map: YAMLMap, prefix: string, covered: boolean) => {
      map.items.forEach((item, i) => {
        if (!isPair(item) || !isScalar(item.key)) return;
        const key = `${prefix}${String(item.key.value)}`;
        // yaml attaches the comment above a map's first key to the map itself.
        const comment = `${item.key.commentBefore ?? ''}\n${i === 0 ? map.commentBefore ?? '' : ''}`;
        const hasDoc = /(^|\n)\s*-- /.test(comment);
        if (hasDoc) documented.push(key);
        if (isMap(item.value) && item.value.items.length > 0 && !hasDoc) walk(item.value, `${key}.`, covered);
        else if (!hasDoc && !covered) undocumented.push(key);
      });
    };
    walk(doc.contents as YAMLMap, '', false);
    assert.deepEqual(undocumented, [], 'values without a `# --` comment');
    const readme = fs.readFileSync(path.join(CHART, 'README.md'), 'utf8');
    const valuesSection = readme.slice(readme.indexOf('\n## Values\n'));
    assert.ok(valuesSection.length > 20, 'README.md has a "## Values" section');
    const table = new Set([...valuesSection.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]!));
    assert.deepEqual(documented.filter((k) => !table.has(k)), [], 'values missing from README.md');
    assert.deepEqual([...table].filter((k) => !documented.includes(k)), [], 'README.md documents values that do not exist');
  });
});
