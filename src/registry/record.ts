/**
 * Registry records are untrusted input: whoever can write Redis decides where clients go. Every record is
 * checked on read; a bad one is skipped, logged once per pod id and counted, and never reaches a router.
 */
import net from 'node:net';
import type { Logger } from 'pino';
import { DNS1123_LABEL } from '../constants.js';
import type { PodRecord } from './registry.js';

/** Largest stored record read (bytes of JSON); a real heartbeat is about 200. Checked before JSON.parse. */
export const MAX_RECORD_BYTES = 4096;
/** Longest pod id kept from a registry key for logging (a DNS-1123 label is at most 63). */
export const MAX_LOGGED_ID_CHARS = 64;
/** Pod ids remembered as "already logged"; past this the memory starts over (a flood logs again, memory stays bounded). */
const MAX_REMEMBERED_IDS = 10_000;
const MAX_PORT = 65_535;
/** How much of a bad value a reason quotes. */
const QUOTE_CHARS = 40;

/** A record, or why it is not one. */
export type RecordCheck = { pod: PodRecord } | { invalid: string };

function quote(v: unknown): string {
  let s: string;
  try {
    s = typeof v === 'string' ? JSON.stringify(v) : v === undefined ? 'missing' : (JSON.stringify(v) ?? typeof v);
  } catch {
    s = typeof v;
  }
  return s.length > QUOTE_CHARS ? `${s.slice(0, QUOTE_CHARS)}…` : s;
}

const isPort = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= MAX_PORT;
const isTimestamp = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * Check a parsed record field by field. `keyId` is the pod id of the key it was stored under: a record
 * naming another pod is invalid (it would shadow that pod). Returns a fresh object with only known fields.
 */
export function checkPodRecord(raw: unknown, keyId?: string): RecordCheck {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { invalid: `not a JSON object (${raw === null ? 'null' : Array.isArray(raw) ? 'array' : typeof raw})` };
  const r = raw as Record<string, unknown>;
  const { podId, ip, port, adminPort, connections, draining, cordoned, startedAt, updatedAt, heartbeatMs } = r;
  const bad = (field: string, want: string) => ({ invalid: `${field} ${quote(r[field])} is not ${want}` });
  if (typeof podId !== 'string' || !DNS1123_LABEL.test(podId)) return bad('podId', 'a DNS-1123 label of at most 63 characters');
  if (keyId !== undefined && podId !== keyId) return { invalid: `stored under pod id ${quote(keyId)} but names pod ${quote(podId)}` };
  // net.isIP accepts an IPv6 zone (fe80::1%eth0); a zone names an interface of the writer, not an address for us.
  if (typeof ip !== 'string' || net.isIP(ip) === 0 || ip.includes('%')) return bad('ip', 'an IPv4 or IPv6 literal (no hostname, no zone)');
  if (!isPort(port)) return bad('port', 'an integer from 1 to 65535');
  if (adminPort !== undefined && !isPort(adminPort)) return bad('adminPort', 'an integer from 1 to 65535');
  if (!Number.isSafeInteger(connections) || (connections as number) < 0) return bad('connections', 'a non-negative safe integer');
  if (typeof draining !== 'boolean') return bad('draining', 'a boolean');
  if (cordoned !== undefined && typeof cordoned !== 'boolean') return bad('cordoned', 'a boolean');
  if (!isTimestamp(startedAt)) return bad('startedAt', 'a finite number (ms since epoch)');
  if (!isTimestamp(updatedAt)) return bad('updatedAt', 'a finite number (ms since epoch)');
  if (typeof heartbeatMs !== 'number' || !Number.isFinite(heartbeatMs) || heartbeatMs <= 0) return bad('heartbeatMs', 'a positive finite number');
  const pod: PodRecord = {
    podId,
    ip,
    port,
    ...(adminPort !== undefined ? { adminPort } : {}),
    connections: connections as number,
    draining,
    ...(cordoned !== undefined ? { cordoned } : {}),
    startedAt,
    updatedAt,
    heartbeatMs,
  };
  return { pod };
}

/** Check stored JSON text: size first (before JSON.parse), then syntax, then the fields. Never throws. */
export function checkPodRecordText(text: string, keyId?: string): RecordCheck {
  if (text.length > MAX_RECORD_BYTES || Buffer.byteLength(text) > MAX_RECORD_BYTES) return { invalid: `larger than ${MAX_RECORD_BYTES} bytes` };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { invalid: 'not valid JSON' };
  }
  return checkPodRecord(raw, keyId);
}

/** Ids of claim records in the guard's log lines start with this (`key:room-1`), so they never collide with a pod id. */
export const CLAIM_ID_PREFIX = 'key:';

/** Check a stored claim value (the owner's pod id, read back untrusted): the owner, or why it is not one. */
export function checkClaimOwner(raw: unknown): { podId: string } | { invalid: string } {
  if (typeof raw !== 'string') return { invalid: typeof raw === 'number' && raw > 0 ? `larger than ${MAX_LOGGED_ID_CHARS} bytes (${raw})` : 'not a string value (wrong Redis type)' };
  if (!DNS1123_LABEL.test(raw)) return { invalid: `owner ${quote(raw)} is not a DNS-1123 label of at most 63 characters` };
  return { podId: raw };
}

/** Where a record was read: the periodic list, a single get, or a change announcement. */
export type RecordSource = 'list' | 'get' | 'change';

/** Skips bad records with one log line per pod id and a running count (rtc_registry_invalid_records_total). */
export interface RecordGuard {
  /** The record if `check` holds one; otherwise undefined, logged (once for `id`) and counted. */
  accept(check: RecordCheck, id: string, source: RecordSource): PodRecord | undefined;
  /** Skip a bad stored value of another kind (a placement claim): logged once for `id`, counted. */
  reject(invalid: string, id: string, source: RecordSource): void;
  /** Records skipped so far (every skipped read counts, so the rate shows a bad record is still there). */
  invalidTotal(): number;
}

/** A guard logging to `logger` (when given). */
export function createRecordGuard(logger?: Logger): RecordGuard {
  const logged = new Set<string>();
  let total = 0;
  return {
    accept(check, id, source) {
      if ('pod' in check) {
        // A pod that writes a good record again logs afresh if it turns bad later.
        if (logged.size > 0) logged.delete(id.slice(0, MAX_LOGGED_ID_CHARS));
        return check.pod;
      }
      this.reject(check.invalid, id, source);
      return undefined;
    },
    reject(invalid, id, source) {
      const key = id.slice(0, MAX_LOGGED_ID_CHARS);
      total++;
      if (!logged.has(key)) {
        if (logged.size >= MAX_REMEMBERED_IDS) logged.clear();
        logged.add(key);
        logger?.warn({ podId: key, reason: invalid, source }, `registry: invalid record for ${key.startsWith(CLAIM_ID_PREFIX) ? '' : 'pod '}${JSON.stringify(key)} skipped (${invalid}); logged once per id, counted in rtc_registry_invalid_records_total`);
      }
    },
    invalidTotal: () => total,
  };
}
