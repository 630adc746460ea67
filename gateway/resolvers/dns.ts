/**
 * `dns` resolver: the nginx original's name template, e.g. `{podId}.socket.rtc.svc.cluster.local:8080`.
 * Works for StatefulSets or CoreDNS `endpoint_pod_names`; Deployment pods have no such record (README).
 */
import { promises as dnsPromises } from 'node:dns';
import type { Logger } from 'pino';
import { Resolved, type Resolution, type Resolver } from './resolver.js';

/** `dns.promises.lookup` shape (first address). */
export type LookupFn = (hostname: string) => Promise<{ address: string; family: number }>;

const NO_SUCH_NAME = new Set(['ENOTFOUND', 'ENODATA', 'EAI_NONAME', 'EAI_NODATA']);

/** Split a rendered `host:port` (IPv6 hosts in brackets). */
export function renderTemplate(template: string, podId: string): { host: string; port: number } {
  const target = template.replaceAll('{podId}', podId);
  const colon = target.lastIndexOf(':');
  let host = target.slice(0, colon);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host, port: Number(target.slice(colon + 1)) };
}

/** Create a DNS resolver; `lookup` is injectable for tests. */
export function createDnsResolver(opts: { template: string; timeoutMs: number; logger: Logger; lookup?: LookupFn }): Resolver {
  const lookup: LookupFn = opts.lookup ?? ((h) => dnsPromises.lookup(h));
  return {
    kind: 'dns',
    resolve(podId): Promise<Resolution> {
      const { host, port } = renderTemplate(opts.template, podId);
      return new Promise<Resolution>((resolve) => {
        // dns.lookup cannot be cancelled: a slow resolver answers 504 and its late result is dropped.
        const timer = setTimeout(() => resolve(Resolved.TIMEOUT), opts.timeoutMs);
        lookup(host).then(
          ({ address }) => {
            clearTimeout(timer);
            resolve({ host: address, port });
          },
          (err: NodeJS.ErrnoException) => {
            clearTimeout(timer);
            if (err.code && NO_SUCH_NAME.has(err.code)) resolve(Resolved.NOT_FOUND);
            else {
              opts.logger.debug({ err, host }, 'dns lookup failed');
              resolve(Resolved.UNREACHABLE);
            }
          },
        );
      });
    },
    ready: async () => undefined,
    close: async () => undefined,
  };
}
