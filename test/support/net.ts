/** Loopback networking helpers shared by tests and benchmarks. */
import net from 'node:net';
import { once } from 'node:events';

/** Every port freePort handed out in this process. */
const handedOut = new Set<number>();
const MAX_TRIES = 100;

/**
 * A free TCP port on 127.0.0.1 (listen on port 0, read the port, close), never one this process was given before:
 * the kernel may hand a closed port to the next `listen(0)`, and two pods of one test kubelet on the same port
 * would share it (or, with exclusive listening, one would fail to start).
 */
export async function freePort(): Promise<number> {
  for (let i = 0; i < MAX_TRIES; i++) {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const { port } = srv.address() as net.AddressInfo;
    await new Promise((r) => srv.close(r));
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`freePort: no port this process has not been given before in ${MAX_TRIES} tries`);
}
