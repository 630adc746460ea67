// `helm test` check, run by the rtc-edge image's node with no dependencies:
// 1. GET /healthz on the gateway answers 200;
// 2. GET /ws/assign names a pod and its pinned URL /ws/<podId>/connect;
// 3. a WebSocket upgrade on that URL answers 101 with the right Sec-WebSocket-Accept, the first frame is
//    {"type":"welcome","podId":<the assigned pod>}, and a ping comes back as a pong with the same `t`.
// Retries (socket pods may still be starting) until TIMEOUT_S, then exits 1 with the last error.
import http from 'node:http';
import crypto from 'node:crypto';

const base = new URL(process.env.GATEWAY_URL ?? 'http://127.0.0.1:8080');
const timeoutMs = Number(process.env.TIMEOUT_S ?? '120') * 1000;
const attemptMs = 10_000;
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

function get(path) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: base.hostname, port: base.port || 80, path, timeout: attemptMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: timed out`)));
    req.on('error', reject);
  });
}

/** A client frame (always masked, RFC 6455 §5.3). */
function frame(opcode, payload) {
  const mask = crypto.randomBytes(4);
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, 0x80 | len]) : Buffer.from([0x80 | opcode, 0x80 | 126, len >> 8, len & 0xff]);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= mask[i % 4];
  return Buffer.concat([head, mask, body]);
}

/** Parse complete server frames (unmasked) off the front of buf. */
function parseFrames(buf) {
  const frames = [];
  let off = 0;
  for (;;) {
    if (buf.length - off < 2) break;
    const opcode = buf[off] & 0x0f;
    if (buf[off + 1] & 0x80) throw new Error('server frame is masked (RFC 6455 forbids it)');
    let len = buf[off + 1] & 0x7f;
    let hdr = 2;
    if (len === 126) { if (buf.length - off < 4) break; len = buf.readUInt16BE(off + 2); hdr = 4; }
    else if (len === 127) { if (buf.length - off < 10) break; len = Number(buf.readBigUInt64BE(off + 2)); hdr = 10; }
    if (buf.length - off < hdr + len) break;
    frames.push({ opcode, payload: buf.subarray(off + hdr, off + hdr + len) });
    off += hdr + len;
  }
  return { frames, rest: buf.subarray(off) };
}

function pinnedWebSocket(path, podId) {
  return new Promise((resolve, reject) => {
    const key = crypto.randomBytes(16).toString('base64');
    const req = http.request({
      host: base.hostname, port: base.port || 80, path, timeout: attemptMs,
      headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': key },
    });
    const timer = setTimeout(() => { req.destroy(); reject(new Error(`${path}: no welcome/pong within ${attemptMs} ms`)); }, attemptMs);
    const fail = (err) => { clearTimeout(timer); reject(err); };
    req.on('timeout', () => req.destroy(new Error(`${path}: upgrade timed out`)));
    req.on('error', fail);
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => fail(new Error(`${path}: expected 101, got ${res.statusCode} ${body}`)));
    });
    req.on('upgrade', (res, socket, head) => {
      const want = crypto.createHash('sha1').update(key + WS_GUID).digest('base64');
      if (res.headers['sec-websocket-accept'] !== want) { socket.destroy(); fail(new Error(`${path}: bad Sec-WebSocket-Accept`)); return; }
      const t = Date.now();
      let buf = head;
      let welcomed = false;
      const onData = (chunk) => {
        buf = Buffer.concat([buf, chunk]);
        let parsed;
        try { parsed = parseFrames(buf); } catch (err) { socket.destroy(); fail(err); return; }
        buf = parsed.rest;
        for (const f of parsed.frames) {
          if (f.opcode === 0x8) { socket.destroy(); fail(new Error(`${path}: closed by the server (code ${f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 'none'})`)); return; }
          if (f.opcode !== 0x1) continue;
          let msg;
          try { msg = JSON.parse(f.payload.toString('utf8')); } catch { socket.destroy(); fail(new Error(`${path}: non-JSON text frame`)); return; }
          if (!welcomed) {
            if (msg.type !== 'welcome' || msg.podId !== podId) { socket.destroy(); fail(new Error(`${path}: first frame ${JSON.stringify(msg)}, expected welcome from ${podId}`)); return; }
            welcomed = true;
            console.log(`welcome from ${msg.podId} (session ${msg.sessionId})`);
            socket.write(frame(0x1, JSON.stringify({ type: 'ping', t })));
          } else if (msg.type === 'pong' && msg.t === t) {
            const close = Buffer.alloc(2);
            close.writeUInt16BE(1000);
            socket.end(frame(0x8, close));
            clearTimeout(timer);
            resolve(msg);
            return;
          }
        }
      };
      socket.on('data', onData);
      socket.on('error', fail);
      if (head.length > 0) onData(Buffer.alloc(0));
    });
    req.end();
  });
}

async function attempt() {
  const health = await get('/healthz');
  if (health.status !== 200) throw new Error(`GET /healthz: ${health.status} ${health.body}`);
  const assign = await get('/ws/assign');
  if (assign.status !== 200) throw new Error(`GET /ws/assign: ${assign.status} ${assign.body}`);
  const { podId, url } = JSON.parse(assign.body);
  if (typeof podId !== 'string' || url !== `/ws/${podId}/connect`) throw new Error(`GET /ws/assign: unexpected ${assign.body}`);
  console.log(`gateway healthy; assigned ${podId} at ${url}`);
  await pinnedWebSocket(url, podId);
  console.log(`pinned WebSocket to ${podId}: welcome and pong received`);
}

const deadline = Date.now() + timeoutMs;
for (let n = 1; ; n++) {
  try {
    await attempt();
    console.log('ok');
    process.exit(0);
  } catch (err) {
    console.log(`attempt ${n}: ${err.message}`);
    if (Date.now() + 2000 > deadline) {
      console.error(`FAILED after ${n} attempts: ${err.message}`);
      process.exit(1);
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}
