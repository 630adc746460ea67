/**
 * `endpointslices` resolver: an informer on the headless Service's discovery.k8s.io/v1 EndpointSlices
 * (label `kubernetes.io/service-name=<SOCKET_SERVICE_NAME>` in POD_NAMESPACE). `targetRef.name` (the pod
 * name = pod id) maps to the endpoint address; terminating → 503 pod_draining, not ready → 503, absent →
 * 404. If the watch keeps failing, the last view is served for GATEWAY_REGISTRY_STALE_MS, then 503.
 */
import { DiscoveryV1Api, KubeConfig, makeInformer, type DiscoveryV1EndpointPort, type V1EndpointSlice } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { edgeError } from '../../src/errors.js';
import { jitteredBackoffMs } from '../../src/backoff.js';
import { WATCH_RETRY_MAX_MS, WATCH_RETRY_MIN_MS } from '../constants.js';
import { isUpstream, Resolved, type Resolution, type Resolver } from './resolver.js';

/** Port names taken as the WebSocket port of a slice, in order of preference. */
const WS_PORT_NAMES = ['ws', 'websocket', 'http'];

export interface EndpointSliceResolverOptions {
  namespace: string;
  serviceName: string;
  /** Preferred port number when no port is named `ws`/`websocket`/`http` (SOCKET_PORT). */
  socketPort: number;
  staleMs: number;
  logger: Logger;
  kubeConfig?: KubeConfig;
  now?: () => number;
}

const WATCH_UNAVAILABLE = edgeError('EDGE_ERR_REGISTRY_UNAVAILABLE', 'the EndpointSlice watch has failed for too long to route safely');

/** The WebSocket port of a slice; undefined when ambiguous (never guesses the admin port). */
export function pickPort(ports: DiscoveryV1EndpointPort[] | undefined, socketPort: number): number | undefined {
  const tcp = (ports ?? []).filter((p) => typeof p.port === 'number' && (p.protocol ?? 'TCP') === 'TCP');
  for (const name of WS_PORT_NAMES) {
    const named = tcp.find((p) => p.name === name);
    if (named) return named.port;
  }
  const byNumber = tcp.find((p) => p.port === socketPort);
  if (byNumber) return byNumber.port;
  return tcp.length === 1 ? tcp[0]!.port : undefined;
}

/** Index slices by pod name; a ready address wins over a not-ready or terminating one. */
export function indexSlices(slices: readonly V1EndpointSlice[], socketPort: number): Map<string, Resolution> {
  const out = new Map<string, Resolution>();
  for (const slice of slices) {
    const port = pickPort(slice.ports, socketPort);
    if (port === undefined) continue;
    for (const ep of slice.endpoints ?? []) {
      const ref = ep.targetRef;
      if (!ref?.name || (ref.kind !== undefined && ref.kind !== 'Pod') || ep.addresses.length === 0) continue;
      const c = ep.conditions ?? {};
      // API semantics: a nil `ready` means ready; `terminating` nil means false.
      const r: Resolution = c.terminating === true ? Resolved.DRAINING : c.ready === false ? Resolved.NOT_READY : { host: ep.addresses[0]!, port };
      const prev = out.get(ref.name);
      if (!prev || (!isUpstream(prev) && isUpstream(r))) out.set(ref.name, r);
    }
  }
  return out;
}

/** Create the EndpointSlice resolver and start its informer. */
export function createEndpointSliceResolver(opts: EndpointSliceResolverOptions): Resolver {
  const now = opts.now ?? Date.now;
  const log = opts.logger;
  const kc = opts.kubeConfig ?? loadDefaultKubeConfig();
  const api = kc.makeApiClient(DiscoveryV1Api);
  const labelSelector = `kubernetes.io/service-name=${opts.serviceName}`;
  const path = `/apis/discovery.k8s.io/v1/namespaces/${opts.namespace}/endpointslices`;

  let byPod = new Map<string, Resolution>();
  let lastOk = -Infinity;
  let failing = true;
  let failureLogged = false;
  let unavailableLogged = false;
  let attempts = 0;
  let stopped = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let firstDone: () => void = () => undefined;
  const first = new Promise<void>((resolve) => (firstDone = resolve));

  const list = async () => {
    try {
      const result = await api.listNamespacedEndpointSlice({ namespace: opts.namespace, labelSelector });
      if (failing && failureLogged) log.info('endpointslice watch recovered');
      lastOk = now();
      failing = false;
      failureLogged = false;
      unavailableLogged = false;
      attempts = 0;
      return result;
    } finally {
      firstDone();
    }
  };
  // A fresh informer per (re)start: it lists first, so nothing missed during an outage is kept stale.
  let informer = makeOne();
  function makeOne() {
    const inf = makeInformer<V1EndpointSlice>(kc, path, list, labelSelector);
    const rebuild = () => {
      if (inf === informer) byPod = indexSlices(inf.list(opts.namespace), opts.socketPort);
    };
    inf.on('add', rebuild);
    inf.on('update', rebuild);
    inf.on('delete', rebuild);
    inf.on('error', (err: unknown) => {
      if (inf !== informer) return;
      if (!failureLogged) log.warn({ err }, 'endpointslice list/watch failed, serving the last view and retrying');
      failureLogged = true;
      failing = true;
      firstDone();
      if (stopped) return;
      retryTimer = setTimeout(restart, jitteredBackoffMs(attempts++, WATCH_RETRY_MIN_MS, WATCH_RETRY_MAX_MS));
      retryTimer.unref();
    });
    return inf;
  }
  function restart(): void {
    if (stopped) return;
    void informer.stop();
    informer = makeOne();
    start();
  }
  function start(): void {
    if (stopped) return;
    informer.start().catch((err: unknown) => {
      // start() only rejects if the watch could not be set up at all (e.g. no cluster in the config).
      log.error({ err }, 'endpointslice informer could not start');
      firstDone();
    });
  }
  start();

  return {
    kind: 'endpointslices',
    resolve(podId) {
      if (failing && now() - lastOk > opts.staleMs) {
        if (!unavailableLogged) log.error({ staleMs: opts.staleMs }, 'endpointslice view too old: answering 503 registry_unavailable');
        unavailableLogged = true;
        return WATCH_UNAVAILABLE;
      }
      return byPod.get(podId) ?? Resolved.NOT_FOUND;
    },
    ready: () => first,
    async close() {
      stopped = true;
      clearTimeout(retryTimer);
      await informer.stop();
    },
  };
}

function loadDefaultKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return kc;
}
