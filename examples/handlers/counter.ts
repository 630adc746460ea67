/**
 * Example SOCKET_HANDLER module (`SOCKET_HANDLER=dist/examples/handlers/counter.js` after `npm run build`):
 * counts each session's messages and answers `{"type":"count"}`; binary frames keep the default echo.
 */
import type { HandlerInit, MessageHandler, Session } from '../../socket/handler.js';

/** The factory the socket node calls once at start-up. */
export default function createCounterHandler({ podId, logger }: HandlerInit): MessageHandler {
  const counts = new WeakMap<Session, number>();
  logger.info('counter handler ready');
  return {
    onOpen(session) {
      counts.set(session, 0);
    },
    onMessage(session, message) {
      const messages = (counts.get(session) ?? 0) + 1;
      counts.set(session, messages);
      if (message.type === 'count') session.sendJson({ type: 'count', podId, sessionId: session.sessionId, messages });
      else session.sendError('EDGE_ERR_UNKNOWN_TYPE', `unknown message type ${JSON.stringify(message.type)}`);
    },
    onClose(session) {
      counts.delete(session);
    },
  };
}
