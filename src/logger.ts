/** pino JSON-line logger; roles take `logger.child({ role })`. */
import { pino, type Logger, type LevelWithSilent } from 'pino';
import { LOG_REDACT_PATHS, REDACTED } from './redact.js';

export type { Logger };

/** Create the process logger writing JSON lines to stdout (or to `destination` in tests). */
export function createLogger(level: LevelWithSilent = 'info', destination?: NodeJS.WritableStream): Logger {
  const opts = { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime, redact: { paths: LOG_REDACT_PATHS, censor: REDACTED } };
  return destination ? pino(opts, destination as pino.DestinationStream) : pino(opts);
}
