/**
 * Example SOCKET_HANDLER module, a tiny room (`SOCKET_HANDLER=dist/examples/handlers/room.js` after `npm run build`):
 * clients connect with a placement key (`/ws/assign?key=<room>` hands out the room's pod, and its connect URL
 * carries the key), and `{"type":"room","data"}` is broadcast as `{"type":"room","key","from","data"}` to every
 * session of the same key on this pod, the sender included. Keyed placement puts every client of a room on one
 * pod, so this in-memory set is the whole room. A join and a leave are announced as `{"type":"joined"|"left",
 * "key","sessionId","members"}`; a session without a key gets `{"type":"error","error":"unknown_type"}` for `room`.
 */
import type { HandlerInit, MessageHandler, Session } from '../../socket/handler.js';

/** The message type clients send and receive. */
export const ROOM_TYPE = 'room';

/** The factory the socket node calls once at start-up. */
export default function createRoomHandler({ logger }: HandlerInit): MessageHandler {
  const rooms = new Map<string, Set<Session>>();
  const broadcast = (key: string, message: unknown) => {
    const text = JSON.stringify(message);
    for (const member of rooms.get(key) ?? []) member.send(text);
  };
  logger.info('room handler ready');
  return {
    onOpen(session) {
      if (session.key === undefined) return;
      let room = rooms.get(session.key);
      if (!room) rooms.set(session.key, (room = new Set()));
      room.add(session);
      broadcast(session.key, { type: 'joined', key: session.key, sessionId: session.sessionId, members: room.size });
    },
    onMessage(session, message) {
      if (message.type !== ROOM_TYPE || session.key === undefined) {
        session.sendError('EDGE_ERR_UNKNOWN_TYPE', message.type === ROOM_TYPE ? 'connect with ?key=<room> to use rooms' : `unknown message type ${JSON.stringify(message.type.slice(0, 64))}`);
        return;
      }
      broadcast(session.key, { type: ROOM_TYPE, key: session.key, from: session.sessionId, data: message.data });
    },
    onClose(session) {
      const key = session.key;
      const room = key === undefined ? undefined : rooms.get(key);
      if (!room?.delete(session)) return;
      if (room.size === 0) rooms.delete(key!);
      else broadcast(key!, { type: 'left', key, sessionId: session.sessionId, members: room.size });
    },
  };
}
