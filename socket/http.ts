/** Small uWS HTTP answer helpers: JSON/text bodies, coded errors, async answers that respect aborts. */
import { EdgeError, type ErrorName, edgeError } from '../src/errors.js';
import type { HttpResponse } from './uws.js';

const REASON: Record<number, string> = {
  200: 'OK',
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  426: 'Upgrade Required',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** An HTTP answer, written in one corked block. */
export interface Reply {
  status: number;
  body: string;
  contentType: string;
  headers?: Record<string, string>;
}

/** A JSON reply. */
export function jsonReply(status: number, body: unknown, headers?: Record<string, string>): Reply {
  return { status, body: JSON.stringify(body), contentType: 'application/json', ...(headers ? { headers } : {}) };
}

/** The JSON error reply of DESIGN.md for a coded error. */
export function errorReply(name: ErrorName | EdgeError, message?: string, headers?: Record<string, string>): Reply {
  const err = name instanceof EdgeError ? name : edgeError(name, message);
  return jsonReply(err.status, err.toJSON(), { ...err.headers, ...headers });
}

/**
 * Write `reply` and end the response. Every answer closes the connection: the admin port sees a few probes
 * a minute, and HTTP on the WebSocket port is always an error, so keep-alive would only hold sockets open.
 */
export function writeReply(res: HttpResponse, reply: Reply): void {
  res.cork(() => {
    res.writeStatus(`${reply.status} ${REASON[reply.status] ?? ''}`.trimEnd());
    res.writeHeader('content-type', reply.contentType);
    for (const [k, v] of Object.entries(reply.headers ?? {})) res.writeHeader(k, v);
    res.end(reply.body, true);
  });
}

/** Answer with the result of `work`, unless the client went away first; a rejection becomes 500. */
export function replyAsync(res: HttpResponse, work: () => Promise<Reply>, onError: (err: unknown) => void): void {
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
  });
  const finish = (reply: Reply) => {
    if (!aborted) writeReply(res, reply);
  };
  let pending: Promise<Reply>;
  try {
    pending = work();
  } catch (err) {
    pending = Promise.reject(err);
  }
  pending.then(finish, (err: unknown) => {
    onError(err);
    finish(errorReply('EDGE_ERR_INTERNAL'));
  });
}
