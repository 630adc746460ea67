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

/**
 * Check a parsed record field by field. `keyId` is the pod id of the key it was stored under: a record
 * naming another pod is invalid (it would shadow that pod). Returns a fresh object with only known fields.
 */
export function checkPodRecord(raw: unknown, keyId?: string): RecordCheck {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { invalid: `not a JSON object (${raw === null ? 'null' : Array.isArray(raw) ? 'array' : typeof raw})` };
  const r = raw as Record<string, unknown>;
  const bad = (field: string, want: string) => ({ invalid: `${field} ${quote(r[field])} is not ${want}` });
  if (typeof r.podId !== 'string' || !DNS1123_LABEL.test(r.podId)) return bad('podId', 'a DNS-1123 label of at most 63 characters');
  if (keyId !== undefined && r.podId !== keyId) return { invalid: `stored under pod id ${quote(keyId)} but names pod ${quote(r.podId)}` };
  // net.isIP accepts an IPv6 zone (fe80::1%eth0); a zone names an interface of the writer, not an address for us.
  if (typeof r.ip !== 'string' || net.isIP(r.ip) === 0 || r.ip.includes('%')) return bad('ip', 'an IPv4 or IPv6 literal (no hostname, no zone)');
  if (!isPort(r.port)) return bad('port', 'an integer from 1 to 65535');
  if (r.adminPort !== undefined && !isPort(r.adminPort)) return bad('adminPort', 'an integer from 1 to 65535');
  if (!Number.isSafeInteger(r.connections) || (r.connections as number) < 0) return bad('connections', 'a non-negative safe integer');
  if (typeof r.draining !== 'boolean') return bad('draining', 'a boolean');
  if (r.cordoned !== undefined && typeof r.cordoned !== 'boolean') return bad('cordoned', 'a boolean');
  for (const f of ['startedAt', 'updatedAt'] as const) if (typeof r[f] !== 'number' || !Number.isFinite(r[f])) return bad(f, 'a finite number (ms since epoch)');
  if (typeof r.heartbeatMs !== 'number' || !Number.isFinite(r.heartbeatMs) || r.heartbeatMs <= 0) return bad('heartbeatMs', 'a positive finite number');
  const pod: PodRecord = {
    podId: r.podId,
    ip: r.ip,
    port: r.port,
    ...(r.adminPort !== undefined ? { adminPort: r.adminPort as number } : {}),
    connections: r.connections as number,
    draining: r.draining,
    ...(r.cordoned !== undefined ? { cordoned: r.cordoned } : {}),
    startedAt: r.startedAt as number,
    updatedAt: r.updatedAt as number,
    heartbeatMs: r.heartbeatMs,
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

/** Where a record was read: the periodic list, a single get, or a change announcement. */
export type RecordSource = 'list' | 'get' | 'change';

/** Skips bad records with one log line per pod id and a running count (rtc_registry_invalid_records_total). */
export interface RecordGuard {
  /** The record if `check` holds one; otherwise undefined, logged (once for `id`) and counted. */
  accept(check: RecordCheck, id: string, source: RecordSource): PodRecord | undefined;
  /** Records skipped so far (every skipped read counts, so the rate shows a bad record is still there). */
  invalidTotal(): number;
}

/** A guard logging to `logger` (when given). */
export function createRecordGuard(logger?: Logger): RecordGuard {
  const logged = new Set<string>();
  let total = 0;
  return {
    accept(check, id, source) {
      const key = id.slice(0, MAX_LOGGED_ID_CHARS);
      if ('pod' in check) {
        // A pod that writes a good record again logs afresh if it turns bad later.
        if (logged.size > 0) logged.delete(key);
        return check.pod;
      }
      total++;
      if (!logged.has(key)) {
        if (logged.size >= MAX_REMEMBERED_IDS) logged.clear();
        logged.add(key);
        logger?.warn({ podId: key, reason: check.invalid, source }, `registry: invalid record for pod ${JSON.stringify(key)} skipped (${check.invalid}); logged once per pod id, counted in rtc_registry_invalid_records_total`);
      }
      return undefined;
    },
    invalidTotal: () => total,
  };
}
