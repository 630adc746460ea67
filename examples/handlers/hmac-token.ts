/**
 * Example SOCKET_HANDLER module: only clients with a valid HMAC-signed token connect
 * (`SOCKET_HANDLER=dist/examples/handlers/hmac-token.js` after `npm run build`, with TOKEN_SECRET set).
 *
 * The token travels in the connect URL's query string, `/ws/<podId>/connect?token=<sub>.<exp>.<sig>`:
 *   sub  the user id, 1–64 of [A-Za-z0-9_-]
 *   exp  expiry, Unix time in seconds
 *   sig  base64url(HMAC-SHA256(TOKEN_SECRET, "<sub>.<exp>")), no padding
 * Your backend mints tokens with {@link signToken} (or any HMAC library) and the same secret. Refusals are
 * `401 {"error":"token_missing"|"token_invalid"|"token_expired"}`; an accepted session carries `{ sub, exp }`
 * as `session.data`, and the welcome is followed by `{"type":"authenticated","sub"}`.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { refuseUpgrade, type HandlerInit, type MessageHandler } from '../../socket/handler.js';

/** The query parameter that carries the token. */
export const TOKEN_PARAM = 'token';
/** The environment variable holding the shared secret (this application's own, not an rtc-edge setting). */
export const SECRET_ENV = 'TOKEN_SECRET';
/** A shorter secret is refused at start-up: HMAC-SHA256 wants at least its output size. */
export const MIN_SECRET_BYTES = 32;

const SUB = /^[A-Za-z0-9_-]{1,64}$/;
const EXP = /^\d{1,12}$/;
const SIG_BYTES = 32;
const MS_PER_S = 1000;

/** What an accepted session carries as `session.data`. */
export interface TokenClaims {
  sub: string;
  /** Expiry, Unix seconds. */
  exp: number;
}

const mac = (secret: string, sub: string, exp: string) => createHmac('sha256', secret).update(`${sub}.${exp}`).digest();

/** Mint a token for `sub` that expires at `expiresAtS` (Unix seconds). */
export function signToken(secret: string, sub: string, expiresAtS: number): string {
  if (!SUB.test(sub)) throw new Error('sub must be 1-64 of [A-Za-z0-9_-]');
  const exp = String(Math.floor(expiresAtS));
  return `${sub}.${exp}.${mac(secret, sub, exp).toString('base64url')}`;
}

/** Check a token: its claims, or why it is refused. `nowS` is injectable for tests. */
export function verifyToken(secret: string, token: string | null, nowS = Date.now() / MS_PER_S): TokenClaims | 'token_missing' | 'token_invalid' | 'token_expired' {
  if (token === null || token === '') return 'token_missing';
  const [sub, exp, sig, extra] = token.split('.');
  if (extra !== undefined || sub === undefined || exp === undefined || sig === undefined || !SUB.test(sub) || !EXP.test(exp)) return 'token_invalid';
  const given = Buffer.from(sig, 'base64url');
  // timingSafeEqual needs equal lengths; a wrong length says nothing about the secret.
  if (given.length !== SIG_BYTES || given.toString('base64url') !== sig) return 'token_invalid';
  if (!timingSafeEqual(given, mac(secret, sub, exp))) return 'token_invalid';
  // Expiry is checked after the signature, so an attacker learns nothing from a forged, expired token.
  if (Number(exp) <= nowS) return 'token_expired';
  return { sub, exp: Number(exp) };
}

/** The factory the socket node calls once at start-up; throws (start-up fails) without a usable secret. */
export default function createHmacTokenHandler({ logger }: HandlerInit): MessageHandler {
  const secret = process.env[SECRET_ENV] ?? '';
  if (Buffer.byteLength(secret) < MIN_SECRET_BYTES) throw new Error(`${SECRET_ENV} must be set to a secret of at least ${MIN_SECRET_BYTES} bytes`);
  logger.info('hmac-token handler ready');
  return {
    onUpgrade(request) {
      const claims = verifyToken(secret, request.query.get(TOKEN_PARAM));
      if (typeof claims === 'string') return refuseUpgrade(401, { error: claims, message: `a valid ${TOKEN_PARAM} is required in the query string` });
      return { data: claims };
    },
    onOpen(session) {
      session.sendJson({ type: 'authenticated', sub: (session.data as TokenClaims).sub });
    },
  };
}
