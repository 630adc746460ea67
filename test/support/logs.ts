/** Log capture for tests: a real pino logger (src/logger.ts) whose JSON lines are kept in memory. */
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/logger.js';

/** Pino lines captured in memory. */
export interface LogCapture {
  logger: Logger;
  lines: Array<Record<string, unknown> & { msg: string; level: number }>;
  /** The `msg` of every line so far, in order. */
  messages(): string[];
}

/** A logger whose JSON lines land in `lines` (level info unless told). */
export function captureLogs(level: 'debug' | 'info' | 'warn' | 'error' = 'info'): LogCapture {
  const lines: LogCapture['lines'] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l) as LogCapture['lines'][number]);
      cb();
    },
  });
  return { logger: createLogger(level, sink), lines, messages: () => lines.map((l) => l.msg) };
}
