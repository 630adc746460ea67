/**
 * The strict request-head parser of the gateway's client port (no `http.Server` objects on the upgrade path).
 * `findHeadEnd` delimits a head as its bytes arrive; `parseRequestHead` checks the header block as strictly as
 * Node's llhttp without `insecureHTTPParser` (token names, no whitespace before the colon, field-value bytes,
 * CRLF only, no obsolete line folding, no Content-Length with Transfer-Encoding, no repeated Content-Length);
 * `headVerdict` then decides who answers: the gateway itself for a `GET` upgrade (which must also be
 * `GET <origin-form> HTTP/1.1`, with exactly one non-empty Host and no body), Node's `http.Server` for anything
 * else. test/gateway-parser-differential.test.ts holds the decisions against llhttp's.
 */
import type { EdgeError } from '../src/errors.js';
import { Answer } from './respond.js';

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HTAB = 0x09;
const COLON = 0x3a;
const SLASH = 0x2f;

/** `findHeadEnd`: no complete head yet. */
export const HEAD_INCOMPLETE = -1;
/** `findHeadEnd`: a LF without its CR (llhttp refuses it at once, so does the gateway). */
export const HEAD_BARE_LF = -2;

/** RFC 9110 tchar. */
const TOKEN = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TOKEN[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TOKEN[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TOKEN[c] = TOKEN[c + 0x20] = 1;
/** RFC 9110 field-value bytes: HTAB, SP, VCHAR, obs-text. */
const FIELD_VALUE = new Uint8Array(256);
FIELD_VALUE[HTAB] = 1;
for (let c = SP; c <= 0xff; c++) if (c !== 0x7f) FIELD_VALUE[c] = 1;

/**
 * Index just past the CRLFCRLF that ends the head in `buf`, HEAD_INCOMPLETE, or HEAD_BARE_LF. `from` is where
 * new bytes start (bytes before it were scanned by an earlier call).
 */
export function findHeadEnd(buf: Buffer, from: number): number {
  for (let lf = buf.indexOf(LF, from); lf !== -1; lf = buf.indexOf(LF, lf + 1)) {
    if (lf === 0 || buf[lf - 1] !== CR) return HEAD_BARE_LF;
    if (lf >= 3 && buf[lf - 2] === LF) return lf + 1;
  }
  return HEAD_INCOMPLETE;
}

/** A request head the parser accepted. Header names and values are latin1, values without surrounding whitespace. */
export interface RequestHead {
  /** The method token, or '' when the request line does not start with one followed by a space. */
  readonly method: string;
  /** The raw request-target (never decoded). */
  readonly url: string;
  /** True when the request line is exactly `<token> SP <origin-form> SP HTTP/1.1`. */
  readonly strictLine: boolean;
  /** Name, value, name, value, … in arrival order (the shape of `IncomingMessage.rawHeaders`). */
  readonly rawHeaders: string[];
  /** Lower-cased names; repeated fields joined with ", ". */
  readonly headers: Record<string, string>;
  /** How many Host fields there were. */
  readonly hostFields: number;
  readonly hasTransferEncoding: boolean;
  /** The Content-Length value, if there was one. */
  readonly contentLength: string | undefined;
  /** Upgrade present and `upgrade` a token of Connection: llhttp's (and so Node's) condition for an upgrade. */
  readonly upgrade: boolean;
}

/** Why a head was refused (the answer, and the reason for logs and tests). */
export interface HeadRefusal {
  readonly error: EdgeError;
  readonly reason: string;
}

function refusal(reason: string, error: EdgeError = Answer.MALFORMED_HEAD): HeadRefusal {
  return { error, reason };
}

/** What a head starting with an empty line is parsed as: nothing the gateway answers itself (Node's parser reads it). */
const LEADING_EMPTY_LINE: RequestHead = {
  method: '', url: '', strictLine: false, rawHeaders: [], headers: Object.create(null) as Record<string, string>,
  hostFields: 0, hasTransferEncoding: false, contentLength: undefined, upgrade: false,
};

/** True when the comma-separated `value` holds the token `upgrade` (any case). */
function hasUpgradeToken(value: string): boolean {
  for (const part of value.split(',')) if (part.trim().toLowerCase() === 'upgrade') return true;
  return false;
}

/** Parse the request line's parts, for the verdict; never refuses (Node's parser judges other methods and plain requests). */
function requestLine(buf: Buffer, end: number): { method: string; url: string; strict: boolean } {
  let i = 0;
  while (i < end && TOKEN[buf[i]!] === 1) i++;
  if (i === 0 || i === end || buf[i] !== SP) return { method: '', url: '', strict: false };
  const method = buf.toString('latin1', 0, i);
  const t0 = ++i;
  while (i < end && buf[i]! > SP && buf[i]! < 0x7f) i++;
  const url = buf.toString('latin1', t0, i);
  const strict = i > t0 && buf[t0] === SLASH && end - i === 9 && buf[i] === SP && buf.toString('latin1', i + 1, end) === 'HTTP/1.1';
  return { method, url, strict };
}

/**
 * Parse the head `buf[0, end)` (`end` from findHeadEnd). Refuses a malformed header block; the request line is
 * only described (see RequestHead.strictLine), since plain requests with other forms go on to Node's parser.
 */
export function parseRequestHead(buf: Buffer, end: number): RequestHead | HeadRefusal {
  const lineEnd = buf.indexOf(LF, 0) - 1;
  // Empty lines before the request line (RFC 9112 §2.2 lets a server skip them): not an upgrade taken here.
  if (lineEnd === 0) return LEADING_EMPTY_LINE;
  for (let i = 0; i < lineEnd; i++) {
    const c = buf[i]!;
    if (c < SP || c === 0x7f) return refusal('control character in the request line');
  }
  const line = requestLine(buf, lineEnd);
  const rawHeaders: string[] = [];
  const headers: Record<string, string> = Object.create(null) as Record<string, string>;
  let hostFields = 0;
  let hasTransferEncoding = false;
  let contentLength: string | undefined;
  let upgradeField = false;
  let connectionUpgrade = false;
  const last = end - 2; // the final CRLF
  for (let at = lineEnd + 2; at < last; ) {
    const eol = buf.indexOf(LF, at) - 1; // findHeadEnd guaranteed every LF follows a CR
    let i = at;
    while (i < eol && TOKEN[buf[i]!] === 1) i++;
    if (i === at) return refusal(buf[at] === SP || buf[at] === HTAB ? 'obsolete line folding' : 'invalid header name');
    if (buf[i] !== COLON) return refusal(buf[i] === SP || buf[i] === HTAB ? 'whitespace before a header colon' : 'invalid header name');
    const name = buf.toString('latin1', at, i);
    let v = i + 1;
    while (v < eol && (buf[v] === SP || buf[v] === HTAB)) v++;
    let ve = eol;
    while (ve > v && (buf[ve - 1] === SP || buf[ve - 1] === HTAB)) ve--;
    for (let k = v; k < ve; k++) if (FIELD_VALUE[buf[k]!] !== 1) return refusal('invalid byte in a header value');
    const value = buf.toString('latin1', v, ve);
    rawHeaders.push(name, value);
    const lower = name.toLowerCase();
    const prev = headers[lower];
    headers[lower] = prev === undefined ? value : `${prev}, ${value}`;
    switch (lower) {
      case 'host':
        hostFields++;
        break;
      case 'transfer-encoding':
        if (contentLength !== undefined) return refusal('both Transfer-Encoding and Content-Length');
        hasTransferEncoding = true;
        break;
      case 'content-length':
        if (hasTransferEncoding) return refusal('both Transfer-Encoding and Content-Length');
        if (contentLength !== undefined) return refusal('repeated Content-Length');
        contentLength = value;
        break;
      case 'upgrade':
        upgradeField = true;
        break;
      case 'connection':
        if (!connectionUpgrade) connectionUpgrade = hasUpgradeToken(value);
        break;
      default:
        break;
    }
    at = eol + 2;
  }
  return {
    method: line.method,
    url: line.url,
    strictLine: line.strict,
    rawHeaders,
    headers,
    hostFields,
    hasTransferEncoding,
    contentLength,
    upgrade: upgradeField && connectionUpgrade,
  };
}

/** True when `r` is a refusal rather than a head. */
export function isRefusal(r: RequestHead | HeadRefusal): r is HeadRefusal {
  return 'error' in r;
}

/** Who answers a parsed head: the gateway's upgrade path, Node's `http.Server`, or a refusal now. */
export type HeadVerdict = { kind: 'upgrade' } | { kind: 'http' } | { kind: 'refuse'; refusal: HeadRefusal };

const UPGRADE: HeadVerdict = { kind: 'upgrade' };
const HTTP: HeadVerdict = { kind: 'http' };
const refuse = (reason: string, error: EdgeError): HeadVerdict => ({ kind: 'refuse', refusal: { error, reason } });
const BAD_LINE = refuse('request line is not GET <origin-form> HTTP/1.1', Answer.BAD_UPGRADE_LINE);
const HAS_BODY = refuse('an upgrade with a body', Answer.UPGRADE_WITH_BODY);
const BAD_HOST = refuse('not exactly one non-empty Host', Answer.BAD_HOST);

/**
 * The upgrade rules on top of the header block: a `GET` upgrade must have a strict request line, no
 * Transfer-Encoding, no Content-Length but "0", and one non-empty Host. Anything that is not a `GET` upgrade is
 * Node's (plain requests, and upgrades with other methods, which it refuses or hands back for a 405).
 */
export function headVerdict(head: Pick<RequestHead, 'method' | 'strictLine' | 'upgrade' | 'hostFields' | 'hasTransferEncoding' | 'contentLength' | 'headers'>): HeadVerdict {
  if (!head.upgrade || head.method !== 'GET') return HTTP;
  if (!head.strictLine) return BAD_LINE;
  if (head.hasTransferEncoding || (head.contentLength !== undefined && head.contentLength !== '0')) return HAS_BODY;
  if (head.hostFields !== 1 || head.headers.host === '') return BAD_HOST;
  return UPGRADE;
}

/** What the bytes read so far on a client connection call for. */
export type HeadStep =
  | { kind: 'more' }
  | { kind: 'refuse'; refusal: HeadRefusal }
  /** A `GET` upgrade for the gateway itself; the head is `buf[0, end)`, bytes after it are the client's early data. */
  | { kind: 'upgrade'; head: RequestHead; end: number }
  /** Anything else: replay every byte read into Node's `http.Server`. */
  | { kind: 'http' };

const MORE: HeadStep = { kind: 'more' };
const TOO_LARGE: HeadStep = { kind: 'refuse', refusal: { error: Answer.HEADERS_TOO_LARGE, reason: 'request head over GATEWAY_MAX_HEADER_BYTES' } };
const BARE_LF: HeadStep = { kind: 'refuse', refusal: { error: Answer.MALFORMED_HEAD, reason: 'LF without CR' } };

/**
 * One step of reading a request head: `buf` holds every byte read so far, of which `[0, scanned)` was examined
 * before (pass 0 at first). A head longer than `maxBytes` (CRLFCRLF included) is refused 431, as llhttp does
 * with the same `maxHeaderSize`.
 */
export function examineHead(buf: Buffer, scanned: number, maxBytes: number): HeadStep {
  const end = findHeadEnd(buf, Math.max(0, scanned - 3));
  if (end === HEAD_BARE_LF) return BARE_LF;
  if (end === HEAD_INCOMPLETE) return buf.length > maxBytes ? TOO_LARGE : MORE;
  if (end > maxBytes) return TOO_LARGE;
  const head = parseRequestHead(buf, end);
  if (isRefusal(head)) return { kind: 'refuse', refusal: head };
  const verdict = headVerdict(head);
  if (verdict.kind === 'refuse') return verdict;
  return verdict.kind === 'upgrade' ? { kind: 'upgrade', head, end } : verdict;
}
