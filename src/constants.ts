/** Protocol constants shared by every role: close codes, paths, headers, annotations, limits. */

/** WebSocket close codes (RFC 6455 §7.4.1 and the IANA registry). */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  INVALID_PAYLOAD: 1007,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  SERVICE_RESTART: 1012,
  TRY_AGAIN_LATER: 1013,
} as const;

/** The only path a socket node serves WebSockets on, and the only path the gateway forwards. */
export const SOCKET_PATH = '/ws/connect';
/** Gateway assignment route. */
export const ASSIGN_PATH = '/ws/assign';
/** Pod-pinned connect route prefix/suffix: `/ws/<podId>/connect`. */
export const CONNECT_PREFIX = '/ws/';
export const CONNECT_SUFFIX = '/connect';

/** Kubernetes annotation that ranks pods for ReplicaSet scale-down (lower is removed first). */
export const DELETION_COST_ANNOTATION = 'controller.kubernetes.io/pod-deletion-cost';
/** The annotation value is an int32. */
export const INT32_MAX = 2_147_483_647;
export const INT32_MIN = -2_147_483_648;

/** A registry entry that missed this many heartbeats is dead to every reader. */
export const DEAD_AFTER_HEARTBEATS = 3;

/** Default key prefix for every registry key. */
export const DEFAULT_REDIS_PREFIX = 'rtc:';
/** Redis: give up one connection attempt after this long (then the reconnect backoff applies). */
export const REDIS_CONNECT_TIMEOUT_MS = 3000;
/** Redis reconnect backoff: first ceiling and cap. */
export const REDIS_RECONNECT_BASE_MS = 100;
export const REDIS_RECONNECT_MAX_MS = 5000;
/** How many recent events a registry read returns unless told. */
export const RECENT_EVENTS_DEFAULT_LIMIT = 50;

/** DNS-1123 label: lower-case alphanumerics and '-', alphanumeric at both ends, 1..63 chars. */
export const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** DNS-1123 subdomain (Kubernetes object names). */
export const DNS1123_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** A placement key (`?key=` on /ws/assign and the connect URL, DESIGN.md "Keyed placement"): 1–128 of `[A-Za-z0-9._:-]`. */
export const PLACEMENT_KEY = /^[A-Za-z0-9._:-]{1,128}$/;
/** The query parameter that carries the placement key. */
export const PLACEMENT_KEY_PARAM = 'key';

/** HTTP header names the gateway sets or reads (lower case, as Node exposes them). */
export const Header = {
  REQUEST_ID: 'x-request-id',
  FORWARDED_FOR: 'x-forwarded-for',
  FORWARDED_PROTO: 'x-forwarded-proto',
  FORWARDED_HOST: 'x-forwarded-host',
  RETRY_AFTER: 'retry-after',
} as const;

/** The reason carried by a drain `reconnect` notice. */
export const RECONNECT_REASON_DRAINING = 'draining';
/** The reason of a `reconnect` notice to the sessions of a key another pod claimed meanwhile (after a registry outage). */
export const RECONNECT_REASON_KEY_MOVED = 'key_moved';

/** A paced drain (socket node or gateway) never wakes more often than this (notices due in the same tick go out as one batch). */
export const DRAIN_TICK_MS = 20;
/** At most this many notices per event-loop turn, so a zero-length window does not block the loop. */
export const DRAIN_MAX_BATCH = 500;

/**
 * Largest request head the pinned uWebSockets.js build accepts when the head arrives in more than one TCP
 * segment (it buffers at most this much between reads; in one read it takes up to ~125 KiB, which loopback
 * shows and real networks do not). Measured by `node --import tsx loadtest/uws-head-limits.ts`.
 */
export const POD_MAX_HEAD_BYTES = 4096;
/** Most header lines (besides the request line) that build accepts; with one more it neither answers nor closes. Same script. */
export const POD_MAX_HEADER_LINES = 48;
