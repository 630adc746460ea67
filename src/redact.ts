/** Keep credentials out of logs and error messages: REDIS_URL's userinfo, and the AUTH arguments ioredis errors carry. */

/** What replaces a secret. */
export const REDACTED = '***';

/** The userinfo of a URL-like string (between `scheme://` and the last `@`), or undefined when it has none. */
function userinfo(raw: string): { start: number; end: number } | undefined {
  const at = raw.lastIndexOf('@');
  if (at < 0) return undefined;
  // The last '@' and not the first: an unencoded '@' or '/' in a password must not split it.
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(raw);
  const start = scheme && scheme[0].length <= at ? scheme[0].length : 0;
  return { start, end: at };
}

/** `raw` with its userinfo replaced: `redis://***@host:6379/0`. Works on malformed values too. */
export function redactUrl(raw: string): string {
  const u = userinfo(raw);
  return u ? `${raw.slice(0, u.start)}${REDACTED}${raw.slice(u.end)}` : raw;
}

/** The secrets a URL carries (userinfo, password as written and decoded), longest first, for scrubbing text. */
export function urlSecrets(raw: string | undefined): string[] {
  if (!raw) return [];
  const u = userinfo(raw);
  if (!u) return [];
  const info = raw.slice(u.start, u.end);
  const colon = info.indexOf(':');
  const out = new Set<string>([info]);
  for (const part of colon < 0 ? [info] : [info.slice(colon + 1)]) {
    out.add(part);
    try {
      out.add(decodeURIComponent(part));
    } catch {
      /* not valid percent-encoding: the raw form is scrubbed */
    }
  }
  return [...out].filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
}

/** `text` with every secret replaced. */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join(REDACTED);
  return out;
}

/** An error as a log object without credentials: type, message and code only (ioredis puts AUTH's arguments on `command`). */
export function safeError(err: unknown, secrets: readonly string[]): { type: string; message: string; code?: string } {
  if (!(err instanceof Error)) return { type: typeof err, message: scrub(String(err), secrets) };
  const code = (err as NodeJS.ErrnoException).code;
  return { type: err.name, message: scrub(err.message, secrets), ...(typeof code === 'string' ? { code } : {}) };
}

/** pino redact paths: ioredis errors logged anywhere as `err` keep their command name but not its arguments. */
export const LOG_REDACT_PATHS = ['err.command.args', 'err.cause.command.args', 'err.lastNodeError.command.args', 'err.previousErrors[*].command.args'];
