/**
 * The operator's monitoring kit, checked with real Prometheus tooling: `promtool check metrics` on the live
 * /metrics of every role (dev, and a gateway, a socket node and a scaler each started alone through the CLI);
 * the chart's PodMonitors/ServiceMonitors and PrometheusRule against the Prometheus Operator CRD schemas
 * (vendored under test/crds/); `promtool check rules` and `promtool test rules` (test/monitoring/alerts.test.yaml)
 * on the rendered rules; the dashboard's PromQL parsed by promtool; and every metric name in rules and dashboard
 * exported by a live role.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import { parse as parseYaml, stringify } from 'yaml';
import WebSocket from 'ws';
import { Service } from 'kubernetes-models/v1';
import { ASSIGN_PATH } from '../src/constants.js';
import { startFakeKubernetes, type FakeKubernetes } from './support/fake-k8s.js';
import { freePort } from './support/net.js';
import { startRedis, type RedisServer } from './support/redis.js';
import { CHART, HELM_KUBE_VERSION, ROOT, helm, renderChart, type Obj } from './support/helm.js';
import { promtool } from './support/promtool.js';
import { waitFor } from './socket-support.js';

const NAMESPACE = 'rtc';
const RELEASE = 'rtc-edge';
const CRD_DIR = path.join(ROOT, 'test/crds/prometheus-operator');
const ALERT_TESTS = path.join(ROOT, 'test/monitoring/alerts.test.yaml');
/** Lets Prometheus through the admin-port NetworkPolicies (the chart requires a peer with monitors on). */
const PROMETHEUS_PEER = 'networkPolicy.metricsNamespace=monitoring';
const ALL_ON = ['metrics.serviceMonitor.enabled=true', 'metrics.prometheusRule.enabled=true', 'grafana.dashboards.enabled=true', PROMETHEUS_PEER];

const render = (sets: string[]) => renderChart(RELEASE, NAMESPACE, [], sets);

// ---- live /metrics of every role ----

const children: ChildProcess[] = [];
let redis: RedisServer;
let fake: FakeKubernetes;
let tmp: string;
/** /metrics text by role (dev = the dev stack's gateway port). */
const scraped = new Map<string, string>();

/** Start `rtc-edge <role>` through the real CLI. */
function spawnRole(role: string, env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'app/cli.ts', role], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'warn', POD_IP: '127.0.0.1', HEARTBEAT_MS: '300', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  child.once('exit', (code) => {
    if (code !== 0 && code !== null) process.stderr.write(`rtc-edge ${role} exited ${code}: ${stderr}\n`);
  });
  children.push(child);
  return child;
}

/** Poll the URLs (in order) until one answers /metrics text for which `ready` holds. */
async function scrape(urls: string[], ready: (text: string) => boolean = () => true, timeoutMs = 180_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    for (const url of urls) {
      try {
        const res = await fetch(url);
        const text = await res.text();
        if (res.status === 200 && /^# HELP /m.test(text) && ready(text)) return text;
        last = `${url}: ${res.status}`;
      } catch (err) {
        last = `${url}: ${(err as Error).message}`;
      }
    }
    if (Date.now() > deadline) throw new Error(`no /metrics within ${timeoutMs} ms (last: ${last})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Metric names a /metrics text exports: each `# TYPE` family, histograms with their series suffixes. */
function exportedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m as unknown as [string, string, string];
    names.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
    if (type === 'summary') for (const s of ['_sum', '_count']) names.add(name + s);
  }
  return names;
}

/** Every `rtc_*` metric name a PromQL text mentions (all of ours carry the prefix; no label name does). */
const metricNames = (promql: string) => new Set([...promql.matchAll(/\brtc_[a-zA-Z0-9_:]+/g)].map((m) => m[0]));

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rtc-edge-monitoring-'));
  redis = await startRedis();
  fake = await startFakeKubernetes({ namespace: NAMESPACE, deployment: 'socket', replicas: 2 });
  const kubeconfig = path.join(tmp, 'kubeconfig');
  fs.writeFileSync(kubeconfig, fake.kubeConfig('scaler-a').exportConfig());
  const [gwPort, gwAdmin, sockPort, sockAdmin, scalerAdmin, devPort] = await Promise.all(Array.from({ length: 6 }, () => freePort()));
  spawnRole('gateway', { REDIS_URL: redis.url, GATEWAY_PORT: String(gwPort), GATEWAY_ADMIN_PORT: String(gwAdmin) });
  spawnRole('socket', { REDIS_URL: redis.url, SOCKET_PORT: String(sockPort), ADMIN_PORT: String(sockAdmin), POD_NAME: 'socket-mon-a', DRAIN_WINDOW_MS: '200' });
  spawnRole('scaler', { REDIS_URL: redis.url, ADMIN_PORT: String(scalerAdmin), POD_NAME: 'scaler-mon-a', POD_NAMESPACE: NAMESPACE, KUBECONFIG: kubeconfig, SCALER_INTERVAL_MS: '300' });
  spawnRole('dev', { GATEWAY_PORT: String(devPort), DRAIN_WINDOW_MS: '200', SCALER_INTERVAL_MS: '300' });
  // One real client through the dev gateway, so the handshake histogram and relay counters carry samples.
  const dev = `127.0.0.1:${devPort}`;
  await scrape([`http://${dev}/metrics`]);
  const assign = await waitFor(async () => {
    const res = await fetch(`http://${dev}${ASSIGN_PATH}`);
    return res.status === 200 ? ((await res.json()) as { url: string }) : undefined;
  }, 120_000, 200);
  const ws = new WebSocket(`ws://${dev}${assign.url}`);
  await once(ws, 'open');
  ws.close();
  await once(ws, 'close');
  // In `dev` one port serves clients and /metrics; the gateway role serves /metrics on GATEWAY_ADMIN_PORT only.
  scraped.set('dev', await scrape([`http://${dev}/metrics`], (t) => /rtc_gateway_relayed_bytes_total\{direction="client_to_pod"[^}]*\} [1-9]/.test(t)));
  scraped.set('gateway', await scrape([`http://127.0.0.1:${gwAdmin}/metrics`]));
  scraped.set('socket', await scrape([`http://127.0.0.1:${sockAdmin}/metrics`], (t) => /rtc_socket_heartbeats_total\{result="ok"/.test(t)));
  scraped.set('scaler', await scrape([`http://127.0.0.1:${scalerAdmin}/metrics`], (t) => /^rtc_scaler_leader\{[^}]*\} 1$/m.test(t) && /^rtc_scaler_decisions_total\{/m.test(t)));
});

after(async () => {
  await Promise.all(children.map(async (c) => {
    if (c.exitCode !== null || c.signalCode !== null) return;
    const exited = once(c, 'exit');
    c.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000)).then(() => c.kill('SIGKILL'))]);
  }));
  await fake?.close();
  await redis?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** Names exported by any live role. */
const exported = () => new Set([...scraped.values()].flatMap((t) => [...exportedNames(t)]));

describe('live /metrics of every role', () => {
  test('promtool check metrics passes on dev, gateway, socket and scaler', () => {
    assert.deepEqual([...scraped.keys()].sort(), ['dev', 'gateway', 'scaler', 'socket']);
    for (const [role, text] of scraped) {
      const r = promtool(['check', 'metrics'], ROOT, text);
      assert.equal(r.status, 0, `${role}: promtool check metrics:\n${r.stdout}${r.stderr}`);
    }
  });

  test('the series the alerts need exist from the start (at 0), because increase() never counts a first sample', () => {
    const zero = (text: string, name: string, label: string) => new RegExp(`^${name}\\{[^}]*${label}[^}]*\\} 0$`, 'm').test(text);
    assert.ok(zero(scraped.get('scaler')!, 'rtc_scaler_scale_in_victims_total', 'honored="false"'), 'scaler: victims honored="false" at 0');
    for (const code of ['502', '503', '504']) assert.ok(zero(scraped.get('gateway')!, 'rtc_gateway_upgrades_total', `code="${code}"`), `gateway: upgrades code=${code} at 0`);
    assert.ok(zero(scraped.get('gateway')!, 'rtc_gateway_fd_exhausted_total', 'where="accept"'));
    // The limits the alerts divide by are exported by the roles themselves.
    assert.match(scraped.get('gateway')!, /^rtc_gateway_max_connections\{[^}]*\} [1-9]\d*$/m);
    assert.match(scraped.get('gateway')!, /^rtc_process_max_fds\{[^}]*role="gateway"[^}]*\} [1-9]\d*$/m);
    assert.match(scraped.get('socket')!, /^rtc_socket_drain_timeout_seconds\{[^}]*\} 300$/m);
    assert.match(scraped.get('socket')!, /^rtc_socket_drain_started_timestamp_seconds\{[^}]*\} 0$/m);
  });
});

// ---- the chart's Prometheus Operator objects ----

/**
 * A CRD's v1 schema for ajv. The API server prunes unknown fields silently, which would hide a typo in a
 * value; here an object schema with `properties` rejects other keys unless it preserves unknown fields.
 */
function crdValidator(ajv: Ajv, file: string): ValidateFunction {
  const crd = parseYaml(fs.readFileSync(path.join(CRD_DIR, file), 'utf8')) as any;
  const v1 = crd.spec.versions.find((v: any) => v.name === 'v1');
  const close = (s: any): any => {
    if (Array.isArray(s)) return s.map(close);
    if (!s || typeof s !== 'object') return s;
    const out: any = Object.fromEntries(Object.entries(s).map(([k, v]) => [k, k === 'properties' ? Object.fromEntries(Object.entries(v as object).map(([p, ps]) => [p, close(ps)])) : close(v)]));
    if (s.type === 'object' && s.properties && s.additionalProperties === undefined && !s['x-kubernetes-preserve-unknown-fields']) out.additionalProperties = false;
    return out;
  };
  const schema = close(v1.schema.openAPIV3Schema);
  // metadata is `type: object` in a CRD schema; the API server validates it as ObjectMeta.
  schema.properties.metadata = { type: 'object' };
  return ajv.compile(schema);
}

describe('chart: monitors, rules and dashboard', () => {
  // The CRDs' patterns are Go regular expressions; their one `(?i)` (case-insensitive from there on) becomes the `i` flag.
  const goRegExp = Object.assign((pattern: string, flags: string) => (pattern.includes('(?i)') ? new RegExp(pattern.replace('(?i)', ''), `${flags}i`) : new RegExp(pattern, flags)), { code: 'new RegExp' });
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false, code: { regExp: goRegExp } });
  const validators: Record<string, ValidateFunction> = {
    ServiceMonitor: crdValidator(ajv, 'monitoring.coreos.com_servicemonitors.yaml'),
    PodMonitor: crdValidator(ajv, 'monitoring.coreos.com_podmonitors.yaml'),
    PrometheusRule: crdValidator(ajv, 'monitoring.coreos.com_prometheusrules.yaml'),
  };
  const crdValid = (o: Obj) => {
    const v = validators[o.kind]!;
    assert.ok(v(o), `${o.kind}/${o.metadata.name} fails the v0.85.0 CRD schema: ${ajv.errorsText(v.errors)}`);
  };

  test('off by default; each of the three is switched on by its own value', () => {
    const monitoring = (objs: Obj[]) => objs.filter((o) => o.apiVersion.startsWith('monitoring.coreos.com/') || o.metadata.name.endsWith('-dashboard') || o.metadata.name.endsWith('-metrics'));
    const def = render([]);
    assert.equal(def.status, 0, def.stderr);
    assert.deepEqual(monitoring(def.objects).map((o) => o.kind), []);
    const kinds = (sets: string[]) => {
      const r = render(sets);
      assert.equal(r.status, 0, r.stderr);
      return monitoring(r.objects).map((o) => o.kind).sort();
    };
    assert.deepEqual(kinds(['metrics.serviceMonitor.enabled=true', PROMETHEUS_PEER]), ['PodMonitor', 'PodMonitor', 'PodMonitor']);
    assert.deepEqual(kinds(['metrics.prometheusRule.enabled=true']), ['PrometheusRule']);
    assert.deepEqual(kinds(['grafana.dashboards.enabled=true']), ['ConfigMap']);
  });

  for (const kind of ['PodMonitor', 'ServiceMonitor']) {
    test(`${kind}s: validate against the CRD, select exactly their role's pods and scrape a port those pods declare`, () => {
      const r = render([...ALL_ON, `metrics.serviceMonitor.kind=${kind}`, 'metrics.serviceMonitor.labels.release=kube-prometheus-stack',
        'metrics.serviceMonitor.metricRelabelings[0].action=drop', 'metrics.serviceMonitor.metricRelabelings[0].sourceLabels[0]=__name__', 'metrics.serviceMonitor.metricRelabelings[0].regex=rtc_nodejs_.*']);
      assert.equal(r.status, 0, r.stderr);
      const monitors = r.objects.filter((o) => o.kind === kind);
      assert.equal(monitors.length, 3);
      for (const role of ['gateway', 'socket', 'scaler']) {
        const mon = monitors.find((m) => m.metadata.labels?.['app.kubernetes.io/component'] === role);
        assert.ok(mon, `${kind} for ${role}`);
        crdValid(mon);
        assert.equal(mon.metadata.namespace, NAMESPACE);
        assert.equal(mon.metadata.labels!.release, 'kube-prometheus-stack', 'monitor labels for the Prometheus selector');
        assert.deepEqual(mon.spec.namespaceSelector, { matchNames: [NAMESPACE] });
        const dep = r.objects.find((o) => o.kind === 'Deployment' && o.metadata.labels?.['app.kubernetes.io/component'] === role)!;
        const pod = dep.spec.template;
        const ports = (pod.spec.containers[0].ports as { name: string; containerPort: number }[]);
        const sel = mon.spec.selector.matchLabels as Record<string, string>;
        const selects = (labels: Record<string, string> | undefined) => Object.entries(sel).every(([k, v]) => labels?.[k] === v);
        const [endpoint] = kind === 'PodMonitor' ? mon.spec.podMetricsEndpoints : mon.spec.endpoints;
        assert.equal(endpoint.path, '/metrics');
        assert.equal(endpoint.interval, '15s');
        assert.equal(endpoint.scrapeTimeout, '10s');
        assert.deepEqual(endpoint.relabelings.map((x: any) => x.targetLabel), ['release', 'node']);
        assert.equal(endpoint.metricRelabelings[0].regex, 'rtc_nodejs_.*');
        const expected = 'admin';
        assert.equal(endpoint.port, expected, `${role}: scrapes the admin port`);
        assert.ok(ports.some((p) => p.name === expected), `${role}: the pods declare a port named admin`);
        if (kind === 'PodMonitor') {
          assert.ok(selects(pod.metadata.labels), `${role}: the PodMonitor selects the ${role} pods`);
          for (const other of r.objects.filter((o) => o.kind === 'Deployment' && o !== dep)) assert.ok(!selects(other.spec.template.metadata.labels), `${role} monitor selects ${other.metadata.name}`);
        } else {
          const services = r.objects.filter((o) => o.kind === 'Service' && selects(o.metadata.labels));
          assert.equal(services.length, 1, `${role}: the ServiceMonitor selects one Service`);
          const svc = services[0]!;
          assert.doesNotThrow(() => new Service(svc as any).validate());
          assert.equal(svc.spec.clusterIP, 'None');
          assert.equal(svc.spec.publishNotReadyAddresses, true, 'draining (not-ready) socket pods stay scraped');
          assert.ok(Object.entries(svc.spec.selector as Record<string, string>).every(([k, v]) => pod.metadata.labels[k] === v), `${role}: the metrics Service selects the ${role} pods`);
          const sp = svc.spec.ports.find((p: any) => p.name === endpoint.port);
          assert.ok(sp, `${role}: the Service has the port the ServiceMonitor scrapes`);
          assert.equal(sp.targetPort, expected);
          assert.equal(sp.port, ports.find((p) => p.name === expected)!.containerPort);
        }
      }
      // The schema check can fail: a misspelt field (which the API server would prune silently) and a bad duration.
      const typo = structuredClone(monitors[0]!);
      typo.spec.podMetricsEndpoint = typo.spec.podMetricsEndpoints ?? typo.spec.endpoints;
      assert.equal(validators[kind]!(typo), false, 'an unknown spec field is rejected');
      const badInterval = structuredClone(monitors[0]!);
      (badInterval.spec.podMetricsEndpoints ?? badInterval.spec.endpoints)[0].interval = '15 seconds';
      assert.equal(validators[kind]!(badInterval), false, 'a bad interval is rejected');
      const lint = helm(['lint', '--strict', CHART, '--namespace', NAMESPACE, '--kube-version', HELM_KUBE_VERSION, ...[...ALL_ON, `metrics.serviceMonitor.kind=${kind}`].flatMap((s) => ['--set', s])]);
      assert.equal(lint.status, 0, lint.stdout + lint.stderr);
    });
  }

  test('NetworkPolicies stay consistent: monitors without a Prometheus peer for the admin ports are refused; with one, it reaches every role\'s admin port', () => {
    const refused = render(['metrics.serviceMonitor.enabled=true']);
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /metrics\.serviceMonitor\.enabled scrapes the admin ports.*set networkPolicy\.metricsNamespace to the namespace your Prometheus runs in/);
    for (const way of ['networkPolicy.enabled=false', 'networkPolicy.adminExtraFrom[0].ipBlock.cidr=10.9.0.0/16']) {
      const r = render(['metrics.serviceMonitor.enabled=true', way]);
      assert.equal(r.status, 0, `${way}: ${r.stderr}`);
    }
    const ok = render(ALL_ON);
    assert.equal(ok.status, 0, ok.stderr);
    for (const role of ['socket', 'gateway', 'scaler']) {
      const pol = ok.objects.find((o) => o.kind === 'NetworkPolicy' && o.spec.podSelector.matchLabels['app.kubernetes.io/component'] === role);
      assert.ok(pol, `a NetworkPolicy selects the ${role} pods`);
      const admin = pol.spec.ingress.find((rule: any) => rule.ports.some((p: any) => p.port === 'admin'));
      assert.ok(admin?.from.some((p: any) => p.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === 'monitoring'), `${role}: Prometheus reaches the admin port`);
    }
    const bad = render([...ALL_ON, 'metrics.serviceMonitor.kind=Probe']);
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /kind/);
  });

  /** The rendered PrometheusRule, its groups written as a rule file into `dir`. */
  function renderedRules(dir: string, sets: string[] = []): { rule: Obj; file: string } {
    const r = render([...ALL_ON, ...sets]);
    assert.equal(r.status, 0, r.stderr);
    const rules = r.objects.filter((o) => o.kind === 'PrometheusRule');
    assert.equal(rules.length, 1);
    const file = path.join(dir, 'rules.yaml');
    fs.writeFileSync(file, stringify({ groups: rules[0]!.spec.groups }));
    return { rule: rules[0]!, file };
  }

  test('PrometheusRule: validates against the CRD and passes promtool check rules; every alert has summary, description and a runbook section of the README', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'rules-'));
    const { rule, file } = renderedRules(dir, ['metrics.prometheusRule.alertLabels.team=edge', 'metrics.prometheusRule.labels.role=alert-rules', 'metrics.prometheusRule.runbookUrl=https://git.example.com/rtc-edge/helm/rtc-edge/README.md']);
    crdValid(rule);
    assert.equal(rule.metadata.labels!.role, 'alert-rules');
    const check = promtool(['check', 'rules', file]);
    assert.equal(check.status, 0, check.stdout + check.stderr);
    const alerts = rule.spec.groups.flatMap((g: any) => g.rules) as { alert: string; expr: string; labels: Record<string, string>; annotations: Record<string, string> }[];
    const names = alerts.map((a) => a.alert);
    assert.equal(new Set(names).size, names.length, 'alert names are unique');
    const readme = fs.readFileSync(path.join(CHART, 'README.md'), 'utf8');
    const monitoring = readme.slice(readme.indexOf('\n## Monitoring\n'), readme.indexOf('\n## ', readme.indexOf('\n## Monitoring\n') + 1));
    assert.ok(monitoring.length > 100, 'README has a "## Monitoring" section');
    const anchors = new Set([...monitoring.matchAll(/^#{2,4} (.+)$/gm)].map((m) => m[1]!.trim().toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-')));
    for (const a of alerts) {
      assert.ok(a.annotations.summary && a.annotations.description, `${a.alert}: summary and description`);
      assert.ok(['warning', 'critical'].includes(a.labels.severity!), `${a.alert}: severity`);
      assert.equal(a.labels.team, 'edge', `${a.alert}: alertLabels reach every alert`);
      const m = /^https:\/\/git\.example\.com\/rtc-edge\/helm\/rtc-edge\/README\.md#([a-z0-9-]+)$/.exec(a.annotations.runbook ?? '');
      assert.ok(m, `${a.alert}: runbook ${a.annotations.runbook}`);
      assert.ok(anchors.has(m[1]!), `${a.alert}: README has no section #${m[1]} in "Monitoring"`);
      assert.match(a.expr, /namespace="rtc",release="rtc-edge"/, `${a.alert}: selects this release's series`);
    }
    // The list, one alert (or more) each.
    for (const [what, re] of [['victim not honoured', /VictimNotHonoured/], ['registry stale or unavailable', /RegistryStale/], ['registry unavailable', /RegistryUnavailable/],
      ['connection limit', /NearConnectionLimit/], ['descriptor limit', /NearDescriptorLimit/], ['refusing with 503', /Refusing503/], ['drain timeout', /DrainTimeout/],
      ['no Lease holder', /NoScalerLeader/], ['at SOCKET_MAX_REPLICAS', /AtMaxReplicas/], ['invalid records', /InvalidRegistryRecords/], ['upstream 502/504', /UpstreamErrors/]] as const) {
      assert.ok(names.some((n) => re.test(n)), `an alert for: ${what}`);
    }
  });

  test('promtool test rules: every alert fires when it should, stays quiet when it should, and waits for its for:', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'unit-'));
    const { rule } = renderedRules(dir);
    fs.copyFileSync(ALERT_TESTS, path.join(dir, 'alerts.test.yaml'));
    const r = promtool(['test', 'rules', 'alerts.test.yaml'], dir);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /SUCCESS/);
    // Coverage: each alert has a firing case and a quiet case; an alert with `for:` is also evaluated while pending.
    const spec = parseYaml(fs.readFileSync(ALERT_TESTS, 'utf8')) as { tests: { alert_rule_test: { alertname: string; eval_time: string; exp_alerts: unknown[] }[] }[] };
    const cases = spec.tests.flatMap((t) => t.alert_rule_test);
    for (const a of rule.spec.groups.flatMap((g: any) => g.rules) as { alert: string; for?: string }[]) {
      const mine = cases.filter((c) => c.alertname === a.alert);
      assert.ok(mine.some((c) => c.exp_alerts.length > 0), `${a.alert}: a case where it fires`);
      assert.ok(mine.some((c) => c.exp_alerts.length === 0), `${a.alert}: a case where it stays quiet`);
    }
  });

  test('promtool test rules fails when an alert does not behave as its test says (the harness can fail)', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'broken-'));
    const { file } = renderedRules(dir);
    // Drop the `for:` of one alert: its pending-time case must now fail.
    const broken = fs.readFileSync(file, 'utf8').replace(/(alert: RtcEdgeNoScalerLeader\n(?:.*\n)*?\s+)for: 2m\n/, '$1');
    assert.notEqual(broken, fs.readFileSync(file, 'utf8'));
    fs.writeFileSync(file, broken);
    fs.copyFileSync(ALERT_TESTS, path.join(dir, 'alerts.test.yaml'));
    const r = promtool(['test', 'rules', 'alerts.test.yaml'], dir);
    assert.notEqual(r.status, 0);
    assert.match(r.stdout + r.stderr, /RtcEdgeNoScalerLeader/);
  });

  test('dashboard: a ConfigMap with the sidecar label (configurable), the panels of the issue, a scale-in first layout, PromQL that parses', () => {
    const def = render(ALL_ON);
    assert.equal(def.status, 0, def.stderr);
    const cm = def.objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'rtc-edge-dashboard')!;
    assert.equal(cm.metadata.labels!.grafana_dashboard, '1');
    const custom = render([...ALL_ON, 'grafana.dashboards.label=dashboards.example.com/load', 'grafana.dashboards.labelValue=yes', 'grafana.dashboards.annotations.grafana_folder=rtc-edge']);
    const cm2 = custom.objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'rtc-edge-dashboard')!;
    assert.equal(cm2.metadata.labels!['dashboards.example.com/load'], 'yes');
    assert.equal(cm2.metadata.labels!.grafana_dashboard, undefined);
    assert.equal(cm2.metadata.annotations?.grafana_folder, 'rtc-edge');
    const dash = JSON.parse(cm.data['rtc-edge.json']) as { uid: string; templating: { list: { name: string; query?: unknown }[] }; panels: { id: number; type: string; title: string; gridPos: { x: number; y: number; w: number; h: number }; targets?: { refId: string; expr: string }[] }[] };
    assert.equal(dash.uid, 'rtc-edge');
    assert.deepEqual(dash.templating.list.map((v) => v.name), ['datasource', 'namespace', 'release']);
    const panels = dash.panels.filter((p) => p.type !== 'row');
    const titled = (re: RegExp) => panels.filter((p) => re.test(p.title));
    for (const re of [/^Connections per socket pod$/, /^Assign rate by status$/, /^Connect rate by status$/, /^Handshake latency$/, /^Relayed bytes$/, /^Desired vs current replicas$/,
      /^Scale-in victims \(honoured or not\)$/, /^Drains/, /^Cordoned pods$/, /^Registry state per gateway$/]) assert.equal(titled(re).length, 1, `a panel ${re}`);
    // At a glance: the top row answers the scale-in questions without scrolling.
    const top = panels.filter((p) => p.gridPos.y < 5).map((p) => p.title);
    for (const re of [/Replicas/, /Draining/, /Victims/, /Registry/]) assert.ok(top.some((t) => re.test(t)), `top row has ${re}: ${top.join(', ')}`);
    assert.ok(titled(/^Desired vs current replicas$/)[0]!.gridPos.y < titled(/^Assign rate/)[0]!.gridPos.y, 'the scale-in row comes before the gateway row');
    // No overlapping panels inside the 24-column grid.
    const cells = new Set<string>();
    for (const p of dash.panels) {
      assert.ok(p.gridPos.x >= 0 && p.gridPos.x + p.gridPos.w <= 24, `${p.title}: inside the grid`);
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
        assert.ok(!cells.has(`${x},${y}`), `${p.title} overlaps another panel at ${x},${y}`);
        cells.add(`${x},${y}`);
      }
    }
    // Every expression parses: as recording rules through promtool, Grafana variables substituted.
    const grafanaVars = (e: string) => e.replaceAll('$namespace', NAMESPACE).replaceAll('$release', RELEASE).replaceAll('$__rate_interval', '1m');
    const rules = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ record: `dashboard:panel_${p.id}_${t.refId}`, expr: grafanaVars(t.expr) })));
    assert.ok(rules.length >= 20);
    const dir = fs.mkdtempSync(path.join(tmp, 'dashboard-'));
    const file = path.join(dir, 'dashboard-rules.yaml');
    fs.writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules }] }));
    const r = promtool(['check', 'rules', file]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`SUCCESS: ${rules.length} rules found`));
  });

  test('rules and dashboard name only metrics that a live role exports', () => {
    const r = render(ALL_ON);
    assert.equal(r.status, 0, r.stderr);
    const names = exported();
    assert.ok(names.size > 40, `exported: ${names.size}`);
    const rule = r.objects.find((o) => o.kind === 'PrometheusRule')!;
    const cm = r.objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'rtc-edge-dashboard')!;
    const used = new Set([...metricNames(JSON.stringify(rule.spec.groups.flatMap((g: any) => g.rules.map((x: any) => x.expr)))), ...metricNames(cm.data['rtc-edge.json'])]);
    assert.ok(used.size >= 20, `used: ${[...used].join(' ')}`);
    assert.deepEqual([...used].filter((n) => !names.has(n)).sort(), [], 'metrics named in rules/dashboard that no role exports');
  });
});
