/**
 * gateway/relay-socket.ts, both sides of a proxied connection on libuv's TCP handle, against real `net` peers:
 * the net.Socket semantics the proxy relies on (queued writes before the connect, half-close both ways, closing
 * by itself once both directions ended, backpressure with a drain, errors then close), the accepted side (a
 * listening net.Server whose handle is taken over: no net.Socket per connection, the hand-off of a plain request
 * to a net.Socket, the close deadline), and that this Node runs the handle implementation rather than the fallback.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net, { type AddressInfo, type Socket } from 'node:net';
import { connectPod, RELAY_SOCKET_KIND, takeAccepts, type RelaySocket, type RelaySocketHandlers } from '../gateway/relay-socket.js';

const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);
const MIB = 1024 * 1024;

interface Recorder {
  events: string[];
  data: Buffer[];
  errors: NodeJS.ErrnoException[];
  closed: Promise<void>;
  ended: Promise<void>;
  drained: () => Promise<void>;
  handlers: RelaySocketHandlers<RelaySocket>;
}

function recorder(): Recorder {
  let closed!: () => void;
  let ended!: () => void;
  let drain: (() => void) | undefined;
  const r: Recorder = {
    events: [],
    data: [],
    errors: [],
    closed: new Promise<void>((res) => (closed = res)),
    ended: new Promise<void>((res) => (ended = res)),
    drained: () => new Promise<void>((res) => (drain = res)),
    handlers: {
      onData(chunk) {
        r.data.push(chunk);
      },
      onEnd() {
        r.events.push('end');
        ended();
      },
      onDrain() {
        r.events.push('drain');
        drain?.();
      },
      onError(err) {
        r.events.push(`error ${err.code}`);
        r.errors.push(err);
      },
      onClose() {
        r.events.push('close');
        closed();
      },
    },
  };
  return r;
}

/** A peer that hands each accepted socket to `onSocket`; close() destroys what is still open (half-open ones too). */
async function peer(onSocket: (s: Socket) => void): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    onSocket(s);
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((res) => {
      server.close(() => res());
      for (const s of sockets) s.destroy();
    }),
  };
}

/** A peer whose one connection is `accepted` (resolves to its socket), paused on accept when `paused`. */
async function acceptingPeer(paused: boolean): Promise<{ port: number; close(): Promise<void>; accepted: Promise<Socket> }> {
  let accept!: (s: Socket) => void;
  const accepted = new Promise<Socket>((res) => (accept = res));
  const p = await peer((s) => {
    if (paused) s.pause();
    accept(s);
  });
  return { ...p, accepted };
}

const collect = (s: Socket) => new Promise<Buffer>((res) => {
  const parts: Buffer[] = [];
  s.on('data', (c: Buffer) => parts.push(c));
  s.on('end', () => res(Buffer.concat(parts)));
});

test('this Node runs the TCP-handle implementation, not the net.Socket fallback', () => {
  assert.equal(RELAY_SOCKET_KIND, 'handle');
});

test('writes made before the connect completes arrive in order; end() sends a FIN after them; the peer\'s FIN is onEnd and the socket closes by itself', async () => {
  let received!: Promise<Buffer>;
  const p = await peer((s) => {
    received = collect(s).then((b) => {
      s.end('bye');
      return b;
    });
  });
  try {
    const r = recorder();
    const sock = connectPod('127.0.0.1', p.port, READ_BUFFER, r.handlers);
    assert.equal(sock.write('GET / HTTP/1.1\r\n'), true);
    assert.equal(sock.write(Buffer.from('Host: x\r\n\r\n')), true);
    sock.end();
    await r.closed;
    assert.equal((await received).toString('latin1'), 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal(Buffer.concat(r.data).toString(), 'bye');
    assert.deepEqual(r.events, ['end', 'close']);
    assert.equal(sock.destroyed, true);
    assert.equal(sock.closed, true);
    assert.equal(sock.write('late'), false, 'nothing is written after the close');
  } finally {
    await p.close();
  }
});

test('half-open: after the peer\'s FIN the socket still writes, and it closes only once it ended too', async () => {
  let peerSocket!: Socket;
  let received!: Promise<Buffer>;
  const p = await peer((s) => {
    peerSocket = s;
    received = collect(s);
    s.end('first');
  });
  try {
    const r = recorder();
    const sock = connectPod('127.0.0.1', p.port, READ_BUFFER, r.handlers);
    await r.ended;
    await new Promise((res) => setTimeout(res, 100));
    assert.deepEqual(r.events, ['end'], 'still open after the peer ended');
    assert.equal(sock.write('after your FIN'), true);
    sock.end();
    await r.closed;
    assert.equal((await received).toString(), 'after your FIN');
    assert.equal(Buffer.concat(r.data).toString(), 'first');
    assert.ok(peerSocket);
  } finally {
    await p.close();
  }
});

test('backpressure: write() turns false past 16 KiB queued while the peer does not read, onDrain follows when it reads, every byte arrives', async () => {
  const p = await acceptingPeer(true);
  try {
    const r = recorder();
    const sock = connectPod('127.0.0.1', p.port, READ_BUFFER, r.handlers);
    const peerSocket = await p.accepted;
    // Connected on this side too (writes before that are queued in JavaScript, which is another path).
    await new Promise((res) => setTimeout(res, 100));
    const chunk = Buffer.alloc(MIB, 3);
    let written = 0;
    let refused = false;
    // Loopback kernel buffers hold a few MiB: keep writing until the handle's own queue passes the mark.
    for (let i = 0; i < 64 && !refused; i++) {
      refused = !sock.write(chunk);
      written += chunk.length;
      await new Promise((res) => setImmediate(res));
    }
    assert.ok(refused, `write() said false within ${written / MIB} MiB`);
    assert.ok(written > MIB, 'the first writes went straight to the kernel');
    assert.ok(!r.events.includes('drain'), 'no drain before the peer reads');
    const drained = r.drained();
    const got = new Promise<number>((res) => {
      let n = 0;
      peerSocket.on('data', (c: Buffer) => {
        n += c.length;
        if (n === written) res(n);
      });
    });
    peerSocket.resume();
    await drained;
    assert.equal(await got, written);
    sock.destroy();
    await r.closed;
    assert.ok(r.events.includes('drain'));
  } finally {
    await p.close();
  }
});

test('a refused connect is onError (ECONNREFUSED) and then onClose, asynchronously; no throw', async () => {
  const p = await peer(() => undefined);
  const port = p.port;
  await p.close();
  const r = recorder();
  const sock = connectPod('127.0.0.1', port, READ_BUFFER, r.handlers);
  assert.deepEqual(r.events, [], 'nothing is reported synchronously');
  sock.write('queued');
  await r.closed;
  assert.deepEqual(r.events, ['error ECONNREFUSED', 'close']);
  assert.equal(r.errors[0]!.syscall, 'connect');
  assert.equal(sock.destroyed, true);
});

test('a reset from the peer is an error and a close; destroy() mid-connect closes without an error', async () => {
  const p = await peer((s) => s.resetAndDestroy());
  try {
    const r = recorder();
    connectPod('127.0.0.1', p.port, READ_BUFFER, r.handlers);
    await r.closed;
    assert.equal(r.events.at(-1), 'close');
    assert.ok(r.events.length === 1 || r.events[0] === 'error ECONNRESET', `events: ${r.events.join(', ')}`);

    const r2 = recorder();
    const sock = connectPod('127.0.0.1', p.port, READ_BUFFER, r2.handlers);
    sock.destroy();
    await r2.closed;
    assert.deepEqual(r2.events, ['close']);
  } finally {
    await p.close();
  }
});

test('pause() stops reading until resume(): what the peer sends meanwhile arrives after resume, in order', async () => {
  const p = await acceptingPeer(false);
  try {
    const r = recorder();
    const sock = connectPod('127.0.0.1', p.port, READ_BUFFER, r.handlers);
    sock.pause();
    const peerSocket = await p.accepted;
    peerSocket.write('one,');
    peerSocket.write('two');
    await new Promise((res) => setTimeout(res, 150));
    assert.equal(r.data.length, 0, 'nothing read while paused');
    sock.resume();
    const until = Date.now() + 2000;
    while (Buffer.concat(r.data).toString() !== 'one,two' && Date.now() < until) await new Promise((res) => setTimeout(res, 10));
    assert.equal(Buffer.concat(r.data).toString(), 'one,two');
    sock.destroy();
    await r.closed;
  } finally {
    await p.close();
  }
});

/** A listening net.Server whose accepts are taken over: each connection comes to `onAccept` as a relay socket. */
async function takenServer(handlers: (n: number) => RelaySocketHandlers<RelaySocket>): Promise<{ port: number; accepted: RelaySocket[]; connectionEvents: () => number; next: () => Promise<RelaySocket>; close(): Promise<void> }> {
  const server = net.createServer({ allowHalfOpen: true });
  let connectionEvents = 0;
  server.on('connection', () => connectionEvents++);
  const accepted: RelaySocket[] = [];
  let waiting: ((s: RelaySocket) => void) | undefined;
  let current: RelaySocketHandlers<RelaySocket> | undefined;
  const relay = {
    onData(this: RelaySocket, c: Buffer) { current?.onData.call(this, c); },
    onEnd(this: RelaySocket) { current?.onEnd.call(this); },
    onDrain(this: RelaySocket) { current?.onDrain.call(this); },
    onError(this: RelaySocket, e: NodeJS.ErrnoException) { current?.onError.call(this, e); },
    onClose(this: RelaySocket) { current?.onClose.call(this); },
  };
  assert.equal(takeAccepts(server, (accept) => {
    current = handlers(accepted.length);
    const s = accept();
    s.handlers = current as RelaySocketHandlers<never>;
    accepted.push(s);
    waiting?.(s);
    waiting = undefined;
  }, relay as RelaySocketHandlers<never>), true);
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  return {
    port: (server.address() as AddressInfo).port,
    accepted,
    connectionEvents: () => connectionEvents,
    next: () => new Promise<RelaySocket>((res) => (waiting = res)),
    close: () => new Promise<void>((res) => {
      for (const s of accepted) s.destroy();
      server.close(() => res());
    }),
  };
}

test('accepted side: a connection arrives as a relay socket (no net.Socket, no connection event) with the peer address; half-close both ways; counters; onClosed once', async () => {
  const r = recorder();
  const srv = await takenServer(() => r.handlers);
  try {
    const next = srv.next();
    const client = net.connect({ port: srv.port, host: '127.0.0.1', allowHalfOpen: true });
    const sock = await next;
    assert.equal(srv.connectionEvents(), 0, 'net.Server made no net.Socket of it');
    assert.equal(sock.remoteAddress, '127.0.0.1');
    let closedHooks = 0;
    sock.onClosed = () => closedHooks++;
    const got = collect(client);
    client.end('hello');
    await r.ended;
    assert.equal(Buffer.concat(r.data).toString(), 'hello');
    assert.equal(sock.bytesRead, 5);
    // Half-open: the peer's FIN does not close it; it still writes, then ends.
    assert.equal(sock.destroyed, false);
    assert.equal(sock.write('world'), true);
    sock.end(Buffer.from('!'));
    assert.equal(sock.bytesWritten, 6);
    assert.equal((await got).toString(), 'world!');
    await r.closed;
    assert.deepEqual(r.events, ['end', 'close']);
    assert.equal(closedHooks, 1);
  } finally {
    await srv.close();
  }
});

test('accepted side: toNetSocket hands the connection to a net.Socket: the bytes read so far (unshifted) and everything after arrive there in order, the relay socket hears nothing more, onClosed moves along', async () => {
  const r = recorder();
  const srv = await takenServer(() => r.handlers);
  try {
    const next = srv.next();
    const client = net.connect({ port: srv.port, host: '127.0.0.1' });
    const sock = await next;
    let closedHooks = 0;
    sock.onClosed = () => closedHooks++;
    const firstRead = new Promise<void>((res) => {
      const h = r.handlers.onData;
      r.handlers.onData = function (this: RelaySocket, c: Buffer) {
        h.call(this, c);
        res();
      };
    });
    client.write('GET / HTTP/1.1\r\n');
    await firstRead;
    const ns = sock.toNetSocket();
    ns.unshift(Buffer.concat(r.data));
    const received: Buffer[] = [];
    ns.on('data', (c: Buffer) => received.push(c));
    const nsClosed = new Promise<void>((res) => ns.on('close', () => res()));
    // Larger than one read of the shared buffer, so several reads go through it into the Readable.
    const big = Buffer.alloc(200 * 1024, 'x');
    client.write(big);
    client.end('END');
    await new Promise<void>((res) => ns.on('end', () => res()));
    ns.end('ok');
    await nsClosed;
    assert.equal(Buffer.concat(received).toString('latin1'), `GET / HTTP/1.1\r\n${big.toString('latin1')}END`);
    assert.deepEqual(r.events, [], 'the relay socket heard nothing after the hand-off');
    assert.equal(r.data.length, 1);
    assert.equal(closedHooks, 1, 'onClosed ran when the net.Socket closed');
    assert.equal(sock.destroyed, true);
  } finally {
    await srv.close();
  }
});

test('accepted side: closeWithin destroys a socket whose peer never closes, and not before the deadline', async () => {
  const r = recorder();
  const srv = await takenServer(() => r.handlers);
  try {
    const next = srv.next();
    const client = net.connect({ port: srv.port, host: '127.0.0.1', allowHalfOpen: true });
    client.on('error', () => undefined);
    const sock = await next;
    const t0 = performance.now();
    sock.end(Buffer.from('answer'));
    sock.closeWithin(300);
    await r.closed;
    const took = performance.now() - t0;
    assert.ok(took >= 290, `closed after ${took.toFixed(0)} ms, before its deadline`);
    assert.ok(took < 3000, `closed after ${took.toFixed(0)} ms`);
    client.destroy();
  } finally {
    await srv.close();
  }
});
