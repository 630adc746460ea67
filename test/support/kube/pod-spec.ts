/**
 * What the process kubelet reads from a pod manifest: its ports (each containerPort gets a loopback port
 * of its own), the environment of a container (value, configMapKeyRef, secretKeyRef, envFrom, fieldRef)
 * and the command that stands in for the container image.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CoreV1Api, V1Container, V1Pod } from '@kubernetes/client-node';
import { freePort } from '../net.js';

/** The repository root (test/support/kube → ../../..). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** The network module every Node process of a pod loads (`node --import`). */
export const NET_SHIM = path.join(REPO_ROOT, 'test/support/kube/netshim.mjs');

/** The built CLI, from package.json `bin` (wherever the build puts it). */
export function cliPath(): string {
  const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
  return path.join(REPO_ROOT, pkg.bin['rtc-edge']!);
}

/** A pod's ports: containerPort number → its loopback port, and port names → containerPort numbers. */
export interface PodPorts {
  byNumber: Map<number, number>;
  byName: Map<string, number>;
}

/** Give every containerPort of the pod a free loopback port. */
export async function allocatePorts(pod: V1Pod): Promise<PodPorts> {
  const ports: PodPorts = { byNumber: new Map(), byName: new Map() };
  for (const c of pod.spec?.containers ?? []) {
    for (const p of c.ports ?? []) {
      if (!ports.byNumber.has(p.containerPort)) ports.byNumber.set(p.containerPort, await freePort());
      if (p.name) ports.byName.set(p.name, p.containerPort);
    }
  }
  return ports;
}

/** The loopback port behind a probe's or hook's `port` (a number or a port name). */
export function loopbackPort(ports: PodPorts, ref: number | string | undefined): number {
  const number = typeof ref === 'number' ? ref : /^\d+$/.test(String(ref)) ? Number(ref) : ports.byName.get(String(ref));
  if (number === undefined) throw new Error(`no container port named ${String(ref)}`);
  return ports.byNumber.get(number) ?? number;
}

/** A value that is exactly a containerPort number becomes that port's loopback port (env, args, exec commands). */
export function substitutePort(ports: PodPorts, value: string): string {
  if (!/^\d+$/.test(value)) return value;
  const mapped = ports.byNumber.get(Number(value));
  return mapped === undefined ? value : String(mapped);
}

/** Facts about the running pod that fieldRef can name. */
export interface PodFacts {
  podIP: string;
  hostIP: string;
}

const decode = (b64: string) => Buffer.from(b64, 'base64').toString('utf8');

/**
 * Kubernetes' `$(VAR)` expansion (third_party/forked/golang/expansion): a reference to a defined variable is
 * replaced, an undefined one stays as written, and `$$` is an escaped `$`.
 */
export function expandVars(value: string, vars: Readonly<Record<string, string>>): string {
  return value.replace(/\$(\$|\(([A-Za-z_][A-Za-z0-9_.-]*)\))/g, (whole, _ref: string, name: string | undefined) =>
    name === undefined ? '$' : Object.hasOwn(vars, name) ? vars[name]! : whole);
}

/** A Kubernetes CPU quantity (`2`, `1.5`, `1500m`) in cores. */
function cores(q: string | number): number {
  const text = String(q);
  return text.endsWith('m') ? Number(text.slice(0, -1)) / 1000 : Number(text);
}

/**
 * The downward API's `resourceFieldRef` for CPU: the container's limit (or request), divided by the divisor and
 * rounded up; without a limit the kubelet reports the node's allocatable CPUs, which here are this machine's.
 */
function cpuField(container: V1Container, resource: string, divisor: string | number | undefined): string {
  const [kind, name] = resource.split('.');
  if (name !== 'cpu' || (kind !== 'limits' && kind !== 'requests')) throw new Error(`resourceFieldRef ${resource} is not supported by the process kubelet`);
  const set = (kind === 'limits' ? container.resources?.limits : container.resources?.requests)?.cpu;
  const value = set === undefined ? (kind === 'limits' ? os.availableParallelism() : 0) : cores(set);
  return String(Math.ceil(value / cores(divisor ?? 1)));
}

/** The container's environment as the manifest gives it (envFrom first, then env; env wins). Throws like CreateContainerConfigError. */
export async function containerEnv(api: CoreV1Api, pod: V1Pod, container: V1Container, facts: PodFacts): Promise<Record<string, string>> {
  const namespace = pod.metadata!.namespace!;
  const configMaps = new Map<string, Record<string, string> | undefined>();
  const secrets = new Map<string, Record<string, string> | undefined>();
  const configMap = async (name: string, optional: boolean | undefined) => {
    if (!configMaps.has(name)) configMaps.set(name, await api.readNamespacedConfigMap({ name, namespace }).then((cm) => cm.data ?? {}, () => undefined));
    const data = configMaps.get(name);
    if (!data && !optional) throw new Error(`configmap "${name}" not found`);
    return data ?? {};
  };
  const secret = async (name: string, optional: boolean | undefined) => {
    if (!secrets.has(name)) {
      secrets.set(name, await api.readNamespacedSecret({ name, namespace }).then((s) => Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, decode(v)])), () => undefined));
    }
    const data = secrets.get(name);
    if (!data && !optional) throw new Error(`secret "${name}" not found`);
    return data ?? {};
  };
  const field = (fieldPath: string): string => {
    switch (fieldPath) {
      case 'metadata.name': return pod.metadata!.name!;
      case 'metadata.namespace': return namespace;
      case 'metadata.uid': return pod.metadata!.uid!;
      case 'spec.nodeName': return pod.spec!.nodeName ?? '';
      case 'spec.serviceAccountName': return pod.spec!.serviceAccountName ?? 'default';
      case 'status.podIP': return facts.podIP;
      case 'status.hostIP': return facts.hostIP;
      default: throw new Error(`fieldRef ${fieldPath} is not supported by the process kubelet`);
    }
  };

  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    const data = from.configMapRef ? await configMap(from.configMapRef.name!, from.configMapRef.optional) : from.secretRef ? await secret(from.secretRef.name!, from.secretRef.optional) : {};
    for (const [k, v] of Object.entries(data)) env[`${from.prefix ?? ''}${k}`] = v;
  }
  for (const e of container.env ?? []) {
    const ref = e.valueFrom;
    // A value may reference variables defined before it, as the real kubelet expands them.
    if (!ref) env[e.name] = expandVars(e.value ?? '', env);
    else if (ref.fieldRef) env[e.name] = field(ref.fieldRef.fieldPath);
    else if (ref.resourceFieldRef) env[e.name] = cpuField(container, ref.resourceFieldRef.resource, ref.resourceFieldRef.divisor);
    else if (ref.configMapKeyRef) {
      const v = (await configMap(ref.configMapKeyRef.name!, ref.configMapKeyRef.optional))[ref.configMapKeyRef.key];
      if (v === undefined && !ref.configMapKeyRef.optional) throw new Error(`key "${ref.configMapKeyRef.key}" not found in configmap "${ref.configMapKeyRef.name}"`);
      if (v !== undefined) env[e.name] = v;
    } else if (ref.secretKeyRef) {
      const v = (await secret(ref.secretKeyRef.name!, ref.secretKeyRef.optional))[ref.secretKeyRef.key];
      if (v === undefined && !ref.secretKeyRef.optional) throw new Error(`key "${ref.secretKeyRef.key}" not found in secret "${ref.secretKeyRef.name}"`);
      if (v !== undefined) env[e.name] = v;
    } else throw new Error(`env ${e.name}: only value, fieldRef, resourceFieldRef (cpu), configMapKeyRef and secretKeyRef are supported`);
  }
  return env;
}

/** The process that stands in for a container's image: `redis-server` for a Redis image, else Node (the rtc-edge CLI or the container's own `node` command). */
export function containerCommand(container: V1Container, ports: PodPorts, env: Readonly<Record<string, string>> = {}): { cmd: string; args: string[] } {
  const args = (container.args ?? []).map((a) => substitutePort(ports, expandVars(a, env)));
  const image = container.image ?? '';
  if (/(^|\/)redis([:@]|$)/.test(image)) return { cmd: 'redis-server', args };
  const command = (container.command ?? []).map((a) => substitutePort(ports, expandVars(a, env)));
  if (command.length === 0) return { cmd: process.execPath, args: ['--import', NET_SHIM, cliPath(), ...args] };
  if (command[0] === 'node') return { cmd: process.execPath, args: ['--import', NET_SHIM, ...command.slice(1), ...args] };
  throw new Error(`container ${container.name}: the process kubelet runs the rtc-edge CLI, node scripts or redis-server, not ${command[0]}`);
}
