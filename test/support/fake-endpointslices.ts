/**
 * A minimal Kubernetes API server for discovery.k8s.io/v1 EndpointSlices over plain HTTP: list and watch
 * (JSON lines) with label-selector filtering, so the real @kubernetes/client-node informer can run
 * against it. `fail()` makes it drop watches and answer 500 (an API outage); `recover()` ends that.
 */
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { V1EndpointSlice } from '@kubernetes/client-node';

/** A running fake API server. */
export interface FakeEndpointSlices {
  url: string;
  /** Path of a kubeconfig file pointing at this server. */
  kubeconfig: string;
  /** Every request URL (path + query) seen. */
  requests: string[];
  upsert(slice: V1EndpointSlice): void;
  remove(name: string): void;
  fail(): void;
  recover(): void;
  close(): Promise<void>;
}

/** Start the fake on 127.0.0.1 for namespace `ns`. */
export async function startFakeEndpointSlices(ns: string): Promise<FakeEndpointSlices> {
  const slices = new Map<string, V1EndpointSlice>();
  const watchers = new Set<{ res: http.ServerResponse; selector: [string, string] | undefined }>();
  const requests: string[] = [];
  let rv = 1;
  let failing = false;
  const base = `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`;

  const matches = (s: V1EndpointSlice, sel: [string, string] | undefined) => !sel || s.metadata?.labels?.[sel[0]] === sel[1];
  const send = (type: string, s: V1EndpointSlice) => {
    for (const w of watchers) if (matches(s, w.selector)) w.res.write(`${JSON.stringify({ type, object: s })}\n`);
  };

  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    const url = new URL(req.url ?? '/', 'http://x');
    if (failing) {
      res.writeHead(500, { 'content-type': 'application/json' }).end('{"kind":"Status","status":"Failure","code":500}');
      return;
    }
    if (url.pathname !== base || req.method !== 'GET') {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"kind":"Status","status":"Failure","code":404}');
      return;
    }
    const raw = url.searchParams.get('labelSelector');
    const selector = raw ? (raw.split('=') as [string, string]) : undefined;
    if (url.searchParams.get('watch') === 'true') {
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      res.flushHeaders();
      const w = { res, selector };
      watchers.add(w);
      res.on('close', () => watchers.delete(w));
      return;
    }
    const items = [...slices.values()].filter((s) => matches(s, selector));
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'EndpointSliceList', apiVersion: 'discovery.k8s.io/v1', metadata: { resourceVersion: String(rv) }, items }));
  });
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fake-eps-'));
  const kubeconfig = path.join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, `apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: ${url}
    insecure-skip-tls-verify: true
users:
- name: tester
  user:
    token: fake-token
contexts:
- name: fake
  context:
    cluster: fake
    user: tester
    namespace: ${ns}
current-context: fake
`);

  return {
    url,
    kubeconfig,
    requests,
    upsert(slice) {
      const name = slice.metadata!.name!;
      const existed = slices.has(name);
      const s: V1EndpointSlice = { ...slice, metadata: { ...slice.metadata, namespace: ns, resourceVersion: String(++rv) } };
      slices.set(name, s);
      send(existed ? 'MODIFIED' : 'ADDED', s);
    },
    remove(name) {
      const s = slices.get(name);
      if (!s) return;
      slices.delete(name);
      send('DELETED', { ...s, metadata: { ...s.metadata, resourceVersion: String(++rv) } });
    },
    fail() {
      failing = true;
      for (const w of watchers) w.res.destroy();
      watchers.clear();
    },
    recover() {
      failing = false;
    },
    async close() {
      for (const w of watchers) w.res.destroy();
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** An EndpointSlice of Service `service` with one endpoint per pod. */
export function slice(name: string, service: string, port: number, pods: { name: string; ip: string; ready?: boolean; serving?: boolean; terminating?: boolean }[]): V1EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, labels: { 'kubernetes.io/service-name': service } },
    addressType: 'IPv4',
    ports: [{ name: 'ws', port, protocol: 'TCP' }, { name: 'admin', port: 9090, protocol: 'TCP' }],
    endpoints: pods.map((p) => ({
      addresses: [p.ip],
      conditions: { ready: p.ready ?? true, serving: p.serving ?? p.ready ?? true, terminating: p.terminating ?? false },
      targetRef: { kind: 'Pod', name: p.name, namespace: 'rtc' },
    })),
  };
}
