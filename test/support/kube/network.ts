/**
 * The table that netshim.mjs reads: pod IP → containerPort → loopback port, Service ClusterIP → port →
 * Ready backends (pod IP, target containerPort), and DNS names → IPs. Rebuilt by the kubelet whenever a
 * pod it runs or a Service changes, and written atomically.
 */
import { renameSync, writeFileSync } from 'node:fs';
import type { V1Service } from '@kubernetes/client-node';
import type { PodPorts } from './pod-spec.js';

/** What the table needs to know about a running pod. */
export interface NetPod {
  name: string;
  namespace: string;
  ip: string;
  labels: Record<string, string>;
  ready: boolean;
  ports: PodPorts;
}

/** The JSON shape netshim.mjs reads. */
export interface NetTable {
  pods: Record<string, Record<string, number>>;
  services: Record<string, Record<string, Array<[string, number]>>>;
  names: Record<string, string>;
}

const matches = (selector: Record<string, string> | undefined, labels: Record<string, string>) =>
  selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);

/** Build the table from the pods and Services. */
export function buildNetTable(pods: readonly NetPod[], services: readonly V1Service[]): NetTable {
  const table: NetTable = { pods: {}, services: {}, names: {} };
  for (const p of pods) table.pods[p.ip] = Object.fromEntries([...p.ports.byNumber].map(([c, l]) => [String(c), l]));
  for (const svc of services) {
    const name = svc.metadata?.name;
    const ns = svc.metadata?.namespace;
    if (!name || !ns) continue;
    const backends = pods.filter((p) => p.namespace === ns && p.ready && matches(svc.spec?.selector, p.labels));
    const clusterIP = svc.spec?.clusterIP;
    if (clusterIP && clusterIP !== 'None') {
      table.names[`${name}.${ns}`] = clusterIP;
      const ports: Record<string, Array<[string, number]>> = {};
      for (const sp of svc.spec?.ports ?? []) {
        const target = sp.targetPort ?? sp.port;
        ports[String(sp.port)] = backends.flatMap((b): Array<[string, number]> => {
          const number = typeof target === 'number' || /^\d+$/.test(String(target)) ? Number(target) : b.ports.byName.get(String(target));
          return number === undefined ? [] : [[b.ip, number]];
        });
      }
      table.services[clusterIP] = ports;
    } else {
      // Headless: the name answers a Ready pod; `<pod>.<svc>.<ns>` answers that pod (CoreDNS endpoint_pod_names).
      if (backends[0]) table.names[`${name}.${ns}`] = backends[0].ip;
      for (const b of backends) table.names[`${b.name}.${name}.${ns}`] = b.ip;
    }
  }
  return table;
}

/** Write the table where netshim.mjs reads it (rename: readers never see half a file). */
export function writeNetTable(file: string, table: NetTable): void {
  writeFileSync(`${file}.tmp`, JSON.stringify(table));
  renameSync(`${file}.tmp`, file);
}
