/** Custom metrics shared by the scripts (declared here, in k6's init context). */
import { Counter, Rate, Trend } from 'k6/metrics';

/** 1 per WebSocket that opened, 0 per one refused or failed before open. */
export const connectSuccess = new Rate('ws_connect_success');
/** Time from `new WebSocket()` to `open`. */
export const handshake = new Trend('ws_handshake', true);
/** Round trip of `{"type":"ping","t"}` → `pong`. */
export const pingRtt = new Trend('ping_rtt', true);
/** Re-assigns after a `reconnect` notice or a refused or failed connect. */
export const reconnects = new Counter('reconnects');
/** From a `reconnect` notice to the `welcome` of another pod. */
export const rehome = new Trend('rehome_time', true);
/** Sequence-numbered echoes that never came back; tag `during`: `steady`, or `drain` when a notice preceded the close. */
export const lostMessages = new Counter('lost_messages');
/** Closes with a code other than 1000, 1001 or 1012 (tag `code`). */
export const unexpectedCloses = new Counter('ws_unexpected_closes');
