/** pino JSON-line logger; roles take `logger.child({ role })`. */
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/** Create the process logger writing JSON lines to stdout (or to `destination` in tests). */
export function createLogger(level: LevelWithSilent = 'info', destination?: NodeJS.WritableStream): Logger {
  const opts = { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  return destination ? pino(opts, destination as pino.DestinationStream) : pino(opts);
}
