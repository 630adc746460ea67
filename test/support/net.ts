/** Loopback networking helpers shared by tests and benchmarks. */
import net from 'node:net';
import { once } from 'node:events';

/** A free TCP port on 127.0.0.1 (listen on port 0, read the port, close). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as net.AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}
