// @kubernetes/client-node is most of an idle process's memory (npm run bench:rss): only the modes that talk to
// the Kubernetes API may load it. Each role runs through the real CLI with a module-resolution hook that records
// every file of the package that gets loaded; the endpointslices gateway is the control that the hook sees it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { spawnRole } from './support/role-process.js';

const PACKAGE = '/node_modules/@kubernetes/client-node/';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rtc-lazy-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const hooks = path.join(dir, 'hooks.mjs');
fs.writeFileSync(hooks, `import fs from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  if (r.url.includes(${JSON.stringify(PACKAGE)})) fs.appendFileSync(process.env.RTC_IMPORT_LOG, r.url + '\\n');
  return r;
}
`);
const register = path.join(dir, 'register.mjs');
fs.writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(new URL(`file://${hooks}`).href)});\n`);
// A cluster the endpointslices resolver cannot reach: its informer fails, which is enough to have loaded the client.
const kubeconfig = path.join(dir, 'kubeconfig');
fs.writeFileSync(kubeconfig, `apiVersion: v1
kind: Config
clusters: [{ name: none, cluster: { server: "http://127.0.0.1:9" } }]
users: [{ name: none, user: { token: none } }]
contexts: [{ name: none, context: { cluster: none, user: none } }]
current-context: none
`);

/** Start `role` until `ready`, stop it, and return the client-node files it loaded. */
async function loaded(name: string, role: string, ready: string, env: Record<string, string>): Promise<string[]> {
  const log = path.join(dir, `${name}.log`);
  fs.writeFileSync(log, '');
  const p = await spawnRole(role, ready, { NODE_OPTIONS: `--import ${register}`, RTC_IMPORT_LOG: log, LOG_LEVEL: 'info', ...env });
  await p.kill();
  return fs.readFileSync(log, 'utf8').split('\n').filter(Boolean);
}

test('the gateway (registry resolver), the socket node and dev never load @kubernetes/client-node; the endpointslices gateway does', { timeout: 120_000 }, async () => {
  const ports = { GATEWAY_PORT: '0', GATEWAY_ADMIN_PORT: '0', SOCKET_PORT: '0', ADMIN_PORT: '0', POD_IP: '127.0.0.1' };
  assert.deepEqual(await loaded('gateway', 'gateway', 'gateway listening', ports), [], 'gateway, registry resolver');
  assert.deepEqual(await loaded('gateway-workers', 'gateway', 'gateway listening', { ...ports, GATEWAY_WORKERS: '2' }), [], 'gateway primary and 2 workers');
  assert.deepEqual(await loaded('socket', 'socket', 'socket node listening', ports), [], 'socket node');
  assert.deepEqual(await loaded('dev', 'dev', 'dev stack ready', { GATEWAY_PORT: '0' }), [], 'dev: the local scaler and its nodes');
  const control = await loaded('endpointslices', 'gateway', 'gateway listening', { ...ports, GATEWAY_RESOLVER: 'endpointslices', KUBECONFIG: kubeconfig });
  assert.ok(control.length > 0, 'the hook records the client where a mode does load it');
});
