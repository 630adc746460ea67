/** The uWebSockets.js binding, refused when the package fell back to its pure-JS server. */
import uWS from 'uWebSockets.js';

export { uWS };
export type { HttpRequest, HttpResponse, TemplatedApp, WebSocket, us_listen_socket, us_socket_context_t } from 'uWebSockets.js';

/** True when `App` is the native binding (the package silently falls back to a JS server otherwise). */
export function isNativeUws(app: unknown = uWS.App): boolean {
  return typeof app === 'function' && /native code/.test(Function.prototype.toString.call(app));
}

/** Throw a clear error unless the native uWebSockets.js binary loaded. */
export function assertNativeUws(app: unknown = uWS.App): void {
  if (isNativeUws(app)) return;
  throw new Error(
    `uWebSockets.js native binary did not load for ${process.platform}-${process.arch} (Node ABI ${process.versions.modules}); ` +
      'the package fell back to its pure-JS server, which the socket node refuses to run (unset UWS_USE_FALLBACK, use a supported Node/platform)',
  );
}

/**
 * uSockets' flag for a listen socket without SO_REUSEPORT. By default uWebSockets.js sets SO_REUSEPORT on an explicit
 * port (not on port 0), so a second process listening on a port that a socket node already holds succeeds, and the
 * kernel then splits new connections between the two: clients pinned to one pod land on another, and nothing says
 * so. On one host (explicit SOCKET_PORT/ADMIN_PORT side by side, a test kubelet) that is a silent misroute;
 * exclusive, the second node fails to start instead.
 */
const LISTEN_EXCLUSIVE_PORT: number = (uWS as unknown as { LIBUS_LISTEN_EXCLUSIVE_PORT?: number }).LIBUS_LISTEN_EXCLUSIVE_PORT ?? 1;

type ListenWithOptions = {
  listen(host: string, port: number, options: number, cb: (s: uWS.us_listen_socket | false) => void): uWS.TemplatedApp;
  listen(port: number, options: number, cb: (s: uWS.us_listen_socket | false) => void): uWS.TemplatedApp;
};

/** Listen on `port` (0 = any free port; never shared with another process) and resolve the listen socket and the bound port. */
export function listen(app: uWS.TemplatedApp, port: number, host?: string): Promise<{ socket: uWS.us_listen_socket; port: number }> {
  return new Promise((resolve, reject) => {
    const done = (socket: uWS.us_listen_socket | false) => {
      if (!socket) {
        reject(new Error(`cannot listen on ${host ?? '*'}:${port} (port in use or not permitted)`));
        return;
      }
      resolve({ socket, port: uWS.us_socket_local_port(socket as unknown as uWS.us_socket) });
    };
    const exclusive = app as unknown as ListenWithOptions;
    if (host) exclusive.listen(host, port, LISTEN_EXCLUSIVE_PORT, done);
    else exclusive.listen(port, LISTEN_EXCLUSIVE_PORT, done);
  });
}
