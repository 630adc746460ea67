/** Scaler tunables that are not configuration: Lease timings, step bounds, API retry and protocol timeouts. */

/** Lease timings of the issue (the client-go / kube-controller-manager defaults). */
export const LEASE_DURATION_MS = 15_000;
/** A leader that could not renew for this long stops acting (must be shorter than the lease duration). */
export const LEASE_RENEW_DEADLINE_MS = 10_000;
/** How often a candidate tries to acquire and a leader renews. */
export const LEASE_RETRY_PERIOD_MS = 2_000;
/** A candidate waits the retry period times (1 + this × random) between attempts, so candidates do not collide. */
export const LEASE_RETRY_JITTER = 0.2;

/** Scale-out step: at most doubling or +4 pods per decision, whichever is more. */
export const SCALE_OUT_MAX_FACTOR = 2;
export const SCALE_OUT_MIN_STEP = 4;

/**
 * From this many pods on, a majority without a live heartbeat means the registry view is stale (hold); in a
 * smaller fleet silent pods are treated as dead and replaced, so one wedged pod of two cannot freeze scaling.
 */
export const STALE_VIEW_MIN_PODS = 4;

/**
 * A pod that became Ready this recently and has never heartbeated still counts as capacity on the way.
 * Pods that are Pending or not yet Ready count as on the way however old they are (they are not serving).
 */
export const POD_BOOT_GRACE_MS = 60_000;

/** Kubernetes API retries: capped, jittered exponential backoff. */
export const KUBE_RETRY_BASE_MS = 250;
export const KUBE_RETRY_MAX_MS = 8_000;
export const KUBE_RETRY_ATTEMPTS = 6;
/** Upper bound on a 429 Retry-After the scaler is willing to wait for one request. */
export const KUBE_RETRY_AFTER_MAX_MS = 30_000;
/** A scale patch that meets this many 409s in a row (re-reading each time) gives up until the next tick. */
export const KUBE_SCALE_CONFLICT_RETRIES = 3;
/** Concurrent deletion-cost patches (keeps the API server's priority-and-fairness queue short). */
export const KUBE_PATCH_CONCURRENCY = 4;
/** Re-list after a pod watch ends with an error, at most this often. */
export const KUBE_WATCH_RESTART_MS = 1_000;

/** How long the scaler waits for the pod watch to show the patched deletion costs before giving up this scale-in. */
export const DELETION_COST_CONFIRM_TIMEOUT_MS = 15_000;
/** How long after a scale-in the scaler keeps looking for the pods Kubernetes removed. */
export const VICTIM_OBSERVE_TIMEOUT_MS = 60_000;

/** A scaler loop that has not completed a tick for this many intervals (plus the grace) fails /healthz. */
export const HEALTH_STALL_INTERVALS = 3;
export const HEALTH_STALL_GRACE_MS = 60_000;

/** Local backend: the /drain call may take DRAIN_TIMEOUT_MS; give up on it this much later (the kubelet's grace margin). */
export const LOCAL_DRAIN_HTTP_MARGIN_MS = 30_000;
/** Local backend: pause before retrying a socket node that failed to start. */
export const LOCAL_START_RETRY_MS = 1_000;
/** Local backend: pod names are `<workload>-<5 chars>` like a Deployment's (the template hash left out). */
export const LOCAL_POD_SUFFIX_LENGTH = 5;
export const POD_NAME_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/**
 * Cordon re-pick hysteresis: a cordoned pod is swapped for an uncordoned one only when that one holds at most
 * this share of the cordoned pod's connections and at least CORDON_REPICK_MIN_GAP fewer (swapping throws away
 * the drain progress the cordoned pod made, so near-equal pods must not flip-flop).
 */
export const CORDON_REPICK_RATIO = 0.5;
export const CORDON_REPICK_MIN_GAP = 10;
/** A cordon mark lives this many scaler intervals unless renewed (at least CORDON_TTL_MIN_MS). */
export const CORDON_TTL_INTERVALS = 6;
export const CORDON_TTL_MIN_MS = 30_000;
/** The deletion cost a retiring victim carries: the lowest an int32 annotation can hold. */
export const VICTIM_DELETION_COST = -2_147_483_648;
/** How long the scaler waits for the workload to show a retiring victim NotReady before it gives up this scale-in. */
export const RETIRE_CONFIRM_TIMEOUT_MS = 30_000;
/** Local backend: how often awaitNotReady looks at the nodes' readiness (the kubelet probes every few seconds). */
export const LOCAL_READY_POLL_MS = 20;
/** Pause between the last watch confirmation and the scale call: the ReplicaSet controller's informer is a second watch. */
export const SCALE_IN_SETTLE_MS = 500;
