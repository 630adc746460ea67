/**
 * The floor under the gateway's handshake and relay cost, for loadtest/probe-handshake.ts: the least a Node proxy on
 * the same TCP-handle bindings as gateway/relay-socket.ts can do per connection. It accepts through a `net.Server`
 * whose `onconnection` it takes over, reads one request head into a shared buffer, connects to one fixed upstream,
 * sends the head with its request line rewritten to `GET /ws/connect…`, and then relays bytes both ways with no
 * parsing, routing, registry, metrics, deadlines or backpressure. Not a product: an anchor that shows what is Node's
 * own cost and what is the gateway's work.
 *   node --import tsx loadtest/floor-proxy.ts <port> <upstream port>
 */
import net from 'node:net';

interface Handle {
  p?: Pair;
  onread: () => void;
  useUserBuffer(b: Uint8Array): void;
  setNoDelay(on: boolean): number;
  readStart(): number;
  readStop(): number;
  connect(req: object, host: string, port: number): number;
  writeBuffer(req: object, b: Buffer): number;
  writeLatin1String(req: object, s: string): number;
  close(cb: () => void): void;
}
interface Pair {
  client: Handle;
  up: Handle | undefined;
  closed: boolean;
  relaying: boolean;
}

const binding = (process as unknown as { binding(n: string): unknown }).binding;
const stream = binding('stream_wrap') as { WriteWrap: new () => Record<string, unknown>; streamBaseState: Int32Array; kReadBytesOrError: number; kLastWriteWasAsync: number };
const tcp = binding('tcp_wrap') as { TCP: new (t: number) => Handle; TCPConnectWrap: new () => { oncomplete?: (s: number) => void }; constants: { SOCKET: number } };
const [port, upstreamPort] = process.argv.slice(2).map(Number) as [number, number];
const BUF = Buffer.allocUnsafe(64 * 1024);
const state = stream.streamBaseState;
const noop = (): void => undefined;

function write(h: Handle, data: Buffer | string): void {
  const req = new stream.WriteWrap();
  req.handle = h;
  req.oncomplete = noop;
  if (typeof data === 'string') h.writeLatin1String(req, data);
  else h.writeBuffer(req, data);
  if (state[stream.kLastWriteWasAsync]) req.buffer = data;
}

function close(p: Pair): void {
  if (p.closed) return;
  p.closed = true;
  p.client.readStop();
  p.client.close(noop);
  if (p.up) {
    p.up.readStop();
    p.up.close(noop);
  }
}

function onClientRead(this: Handle): void {
  const n = state[stream.kReadBytesOrError]!;
  const p = this.p!;
  if (n < 0) return close(p);
  if (n === 0) return;
  const chunk = Buffer.from(BUF.subarray(0, n));
  if (p.up) return write(p.up, chunk);
  const head = chunk.toString('latin1');
  const rest = head.slice(head.indexOf('\r\n'));
  const query = /^GET [^? ]*(\?[^ ]*)? /.exec(head)?.[1] ?? '';
  const up = new tcp.TCP(tcp.constants.SOCKET);
  up.p = p;
  p.up = up;
  up.onread = onUpstreamRead;
  up.useUserBuffer(BUF);
  const req = new tcp.TCPConnectWrap();
  req.oncomplete = (status) => {
    if (status < 0) return close(p);
    up.setNoDelay(true);
    write(up, `GET /ws/connect${query} HTTP/1.1${rest}`);
    up.readStart();
  };
  up.connect(req, '127.0.0.1', upstreamPort);
  this.readStop(); // until the upstream answers
}

function onUpstreamRead(this: Handle): void {
  const n = state[stream.kReadBytesOrError]!;
  const p = this.p!;
  if (n < 0) return close(p);
  if (n === 0) return;
  write(p.client, Buffer.from(BUF.subarray(0, n)));
  if (!p.relaying) {
    p.relaying = true;
    p.client.readStart();
  }
}

const server = net.createServer();
server.listen(port, '127.0.0.1', () => {
  (server as unknown as { _handle: { onconnection: (err: number, h: Handle) => void } })._handle.onconnection = (err, h) => {
    if (err) return;
    h.p = { client: h, up: undefined, closed: false, relaying: false };
    h.onread = onClientRead;
    h.useUserBuffer(BUF);
    h.setNoDelay(true);
    h.readStart();
  };
  process.stdout.write('listening\n');
});
