// The process kubelet's pod network for Node processes, loaded with `node --import`. There is no pod
// network on the test machine: every pod process listens on its own loopback ports. This module makes
// the cluster addresses the manifests use work inside the process:
// - a TCP connect to a pod IP (10.244.x.y) goes to 127.0.0.1, the containerPort mapped to that pod's
//   loopback port (other ports pass as they are), whether it is made by a net.Socket or on a bare TCP handle;
// - a connect to a Service (its ClusterIP or DNS name) goes to one Ready pod behind it, like kube-proxy;
// - dns.lookup answers Service names (`svc`, `svc.ns`, `svc.ns.svc.<domain>`) and, like CoreDNS with
//   `endpoint_pod_names`, `<pod>.<headless svc>.<ns>.svc.<domain>`.
// The table is the JSON file RTC_KUBELET_NET, rewritten by the kubelet whenever pods or Services change.
import dns from 'node:dns';
import net from 'node:net';
import os from 'node:os';
import { readFileSync } from 'node:fs';

const tableFile = process.env.RTC_KUBELET_NET;
const ownNamespace = process.env.RTC_KUBELET_NAMESPACE ?? 'default';

function table() {
  try {
    return JSON.parse(readFileSync(tableFile, 'utf8'));
  } catch {
    return { pods: {}, services: {}, names: {} };
  }
}

/** `svc`, `svc.ns`, `svc.ns.svc[.domain]`, `pod.svc.ns.svc[.domain]` → the key in `names`. */
function nameKey(host) {
  const parts = host.toLowerCase().replace(/\.$/, '').split('.');
  const svcAt = parts.indexOf('svc');
  const local = svcAt >= 0 ? parts.slice(0, svcAt) : parts;
  if (local.length === 1) return `${local[0]}.${ownNamespace}`;
  return local.join('.');
}

function lookupName(host) {
  if (net.isIP(host)) return undefined;
  return table().names[nameKey(host)];
}

/** Where a connect to ip:port really goes: `{host, port}`, `null` (a Service without Ready pods), or undefined (not ours). */
function route(host, port) {
  const t = table();
  const ip = net.isIP(host) ? host : t.names[nameKey(host)];
  if (!ip) return undefined;
  const svc = t.services[ip];
  if (svc) {
    const backends = svc[String(port)] ?? [];
    if (backends.length === 0) return null;
    const [podIp, targetPort] = backends[Math.floor(Math.random() * backends.length)];
    return { host: '127.0.0.1', port: t.pods[podIp]?.[String(targetPort)] ?? targetPort };
  }
  const pod = t.pods[ip];
  if (pod) return { host: '127.0.0.1', port: pod[String(port)] ?? Number(port) };
  // A cluster address nobody has (a pod that is gone): refused here, never sent to the real network.
  if (/^10\.(96|244)\./.test(ip)) return null;
  return undefined;
}

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function patchedConnect(...args) {
  // net.connect() passes its normalized [options, cb] array; socket.connect(port, host, cb) and (options, cb) also exist.
  let options;
  if (Array.isArray(args[0])) options = args[0][0];
  else if (args[0] !== null && typeof args[0] === 'object') options = args[0];
  else if (typeof args[0] === 'number' || (typeof args[0] === 'string' && /^\d+$/.test(args[0]))) {
    options = { port: args[0], host: typeof args[1] === 'string' ? args[1] : 'localhost' };
    args = [options, ...args.slice(typeof args[1] === 'string' ? 2 : 1)];
  }
  // A string `path` is an IPC socket; http passes path: null for TCP.
  if (options && typeof options.path !== 'string' && options.host) {
    const target = route(options.host, options.port);
    if (target === null) {
      const err = Object.assign(new Error(`connect ECONNREFUSED ${options.host}:${options.port} (no Ready pod behind this cluster address)`), { code: 'ECONNREFUSED', syscall: 'connect' });
      process.nextTick(() => this.destroy(err));
      return this;
    }
    if (target) {
      options.host = target.host;
      options.port = target.port;
    }
  }
  return connect.apply(this, args);
};

// The gateway dials pods on libuv's TCP handle without a net.Socket (gateway/pod-socket.ts), so the same routing
// applies one level down, where every TCP connect of the process ends up: an address net.Socket.connect already
// mapped arrives as 127.0.0.1 and passes. A refused cluster address is libuv's ECONNREFUSED, returned as the handle does.
const tcpWrap = process.binding('tcp_wrap');
const handleConnect = tcpWrap.TCP.prototype.connect;
tcpWrap.TCP.prototype.connect = function patchedHandleConnect(req, host, port) {
  const target = route(host, port);
  if (target === null) return -os.constants.errno.ECONNREFUSED;
  if (target) return handleConnect.call(this, req, target.host, target.port);
  return handleConnect.call(this, req, host, port);
};

const lookup = dns.lookup;
dns.lookup = function patchedLookup(host, options, cb) {
  const callback = typeof options === 'function' ? options : cb;
  const ip = typeof host === 'string' ? lookupName(host) : undefined;
  if (!ip) return lookup.call(this, host, options, cb);
  const all = typeof options === 'object' && options?.all;
  process.nextTick(() => (all ? callback(null, [{ address: ip, family: 4 }]) : callback(null, ip, 4)));
  return {};
};
const lookupPromise = dns.promises.lookup;
dns.promises.lookup = async function patchedPromiseLookup(host, options) {
  const ip = typeof host === 'string' ? lookupName(host) : undefined;
  if (!ip) return lookupPromise.call(this, host, options);
  return typeof options === 'object' && options?.all ? [{ address: ip, family: 4 }] : { address: ip, family: 4 };
};
