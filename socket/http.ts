/** Writing the shared HTTP answers (src/http.ts) through uWebSockets.js: corked, and async answers that respect aborts. */
import { errorReply, statusText, type Reply } from '../src/http.js';
import type { HttpResponse } from './uws.js';

/**
 * Write `reply` and end the response. Every answer closes the connection: the admin port sees a few probes
 * a minute, and HTTP on the WebSocket port is always an error, so keep-alive would only hold sockets open.
 */
export function writeReply(res: HttpResponse, reply: Reply): void {
  res.cork(() => {
    res.writeStatus(statusText(reply.status));
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
