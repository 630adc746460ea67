/**
 * A lean WebSocket client for the benchmarks (raw TCP): handshake, masked text frames out, unmasked frames
 * in. It costs little of the 2 shared cores, so what the benches measure is the server side.
 */
import net from 'node:net';

/** What opening a connection ended with: a connection, or the HTTP status / failure that refused it. */
export type OpenResult = { conn: WsConn } | { status: number | 'closed' | 'error' | 'timeout'; retryAfterS?: number };

const OPCODE_TEXT = 1;
const OPCODE_CLOSE = 8;
const DEFAULT_OPEN_TIMEOUT_MS = 10_000;
const RETRY_AFTER = /\r\nretry-after:[ \t]*(\d+)/i;

/** One client connection after its 101. */
export class WsConn {
  private buf: Buffer | undefined;
  private waiter: ((text: string) => void) | undefined;
  closed = false;
  /** Called once when the server sends a close frame or the socket closes. */
  onGone: (() => void) | undefined;
  constructor(readonly socket: net.Socket) {
    socket.on('close', () => this.gone());
  }

  private gone(): void {
    this.closed = true;
    const cb = this.onGone;
    this.onGone = undefined;
    cb?.();
  }

  feed(chunk: Buffer): void {
    let b = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      if (b.length < 2) break;
      let len = b[1]! & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) break;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) break;
        len = Number(b.readBigUInt64BE(2));
        off = 10;
      }
      if (b.length < off + len) break;
      const opcode = b[0]! & 0x0f;
      const payload = b.subarray(off, off + len);
      b = b.subarray(off + len);
      if (opcode === OPCODE_CLOSE) {
        this.socket.destroy();
        this.gone();
        return;
      }
      if (opcode === OPCODE_TEXT && this.waiter) {
        const text = payload.toString('utf8');
        if (text.includes('"pong"')) {
          const w = this.waiter;
          this.waiter = undefined;
          w(text);
        }
      }
    }
    this.buf = b.length > 0 ? Buffer.from(b) : undefined;
  }

  /** Send a ping and resolve on its pong. */
  ping(t: number): Promise<string> {
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(new Error('closed'));
        return;
      }
      this.waiter = resolve;
      const payload = Buffer.from(`{"type":"ping","t":${t}}`);
      const frame = Buffer.allocUnsafe(6 + payload.length);
      frame[0] = 0x80 | OPCODE_TEXT;
      frame[1] = 0x80 | payload.length;
      frame.writeUInt32BE(0, 2); // zero mask: valid, and payload stays as is
      payload.copy(frame, 6);
      this.socket.write(frame);
    });
  }
}

/** Open one WebSocket to 127.0.0.1:`port` at `urlPath`. */
export function openWs(port: number, urlPath: string, timeoutMs = DEFAULT_OPEN_TIMEOUT_MS): Promise<OpenResult> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', noDelay: true });
    let head = Buffer.alloc(0);
    let done = false;
    const finish = (r: OpenResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(r);
    };
    const timer = setTimeout(() => {
      s.destroy();
      finish({ status: 'timeout' });
    }, timeoutMs);
    s.on('error', () => finish({ status: 'error' }));
    s.on('close', () => finish({ status: 'closed' }));
    const onData = (d: Buffer) => {
      head = Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      const status = Number(head.toString('latin1', 9, 12));
      if (status !== 101) {
        const m = RETRY_AFTER.exec(head.toString('latin1', 0, end + 2));
        s.destroy();
        finish(m ? { status, retryAfterS: Number(m[1]) } : { status });
        return;
      }
      s.off('data', onData);
      const conn = new WsConn(s);
      s.on('data', (c: Buffer) => conn.feed(c));
      if (head.length > end + 4) conn.feed(head.subarray(end + 4));
      finish({ conn });
    };
    s.on('data', onData);
    s.write(`GET ${urlPath} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  });
}

/** Open `n` connections, `concurrency` at a time; refusals counted by status. */
export async function openMany(port: number, urlPath: string, n: number, concurrency: number): Promise<{ conns: WsConn[]; failures: Record<string, number> }> {
  const conns: WsConn[] = [];
  const failures: Record<string, number> = {};
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      const r = await openWs(port, urlPath);
      if ('conn' in r) conns.push(r.conn);
      else failures[String(r.status)] = (failures[String(r.status)] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { conns, failures };
}
