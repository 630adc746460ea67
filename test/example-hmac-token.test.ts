/**
 * examples/handlers/hmac-token.ts loaded as SOCKET_HANDLER on a real socket node behind the real gateway.
 * Tokens are minted here with node:crypto from the documented format, not with the example's own signer.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { signToken, verifyToken } from '../examples/handlers/hmac-token.js';
import { Client, refusedUpgrade, startNode, waitFor, type TestNode } from './socket-support.js';
import { startGateway, type TestGateway } from './support/upstream.js';

const SECRET = 'a-test-secret-that-is-long-enough-0123456789';
const nowS = () => Math.floor(Date.now() / 1000);

/** `<sub>.<exp>.<base64url(HMAC-SHA256(secret, "<sub>.<exp>"))>`, as the example's header documents it. */
function mint(sub: string, exp: number, secret = SECRET): string {
  return `${sub}.${exp}.${createHmac('sha256', secret).update(`${sub}.${exp}`).digest('base64url')}`;
}

describe('the HMAC token example handler', () => {
  let t: TestNode;
  let gw: TestGateway;
  let saved: string | undefined;

  before(async () => {
    saved = process.env.TOKEN_SECRET;
    process.env.TOKEN_SECRET = SECRET;
    t = await startNode({ SOCKET_HANDLER: './examples/handlers/hmac-token.ts', HEARTBEAT_MS: '200' });
    gw = await startGateway({ HEARTBEAT_MS: '200' }, { registry: t.registry });
    await waitFor(async () => (await fetch(`${gw.base}/ws/assign`)).status === 200);
  });
  after(async () => {
    await gw.gateway.close();
    await t.node.close();
    if (saved === undefined) delete process.env.TOKEN_SECRET;
    else process.env.TOKEN_SECRET = saved;
  });

  test('a valid token connects; the session carries its subject', async () => {
    const ws = await Client.open(gw.ws(t.node.podId, `token=${encodeURIComponent(mint('user_42', nowS() + 60))}`));
    assert.equal((await ws.json()).type, 'welcome');
    assert.deepEqual(await ws.json(), { type: 'authenticated', sub: 'user_42' });
    await ws.end();
  });

  test('missing, malformed, tampered, foreign-secret and expired tokens are refused with 401 and a JSON code', async () => {
    const good = mint('ada', nowS() + 60);
    const [sub, exp, sig] = good.split('.') as [string, string, string];
    const flipped = `${sig.slice(0, -2)}${sig.at(-2) === 'A' ? 'B' : 'A'}${sig.at(-1)}`;
    const cases: [string, string][] = [
      ['', 'token_missing'],
      ['token=', 'token_missing'],
      ['token=garbage', 'token_invalid'],
      [`token=${sub}.${exp}`, 'token_invalid'],
      [`token=${sub}.${exp}.${flipped}`, 'token_invalid'],
      [`token=${sub}.${Number(exp) + 3600}.${sig}`, 'token_invalid'],
      [`token=eve.${exp}.${sig}`, 'token_invalid'],
      [`token=${sub}.${exp}.${sig}AA`, 'token_invalid'],
      [`token=${mint('ada', nowS() + 60, 'another-secret-of-the-same-length-0123456')}`, 'token_invalid'],
      [`token=${mint('ada', nowS() - 1)}`, 'token_expired'],
    ];
    for (const [query, code] of cases) {
      const r = await refusedUpgrade(gw.ws(t.node.podId, query));
      assert.equal(r.status, 401, query);
      assert.equal(r.body.error, code, query);
      assert.equal(typeof r.body.message, 'string');
    }
  });

  test("the example's signer and verifier agree with the documented format", () => {
    const exp = nowS() + 60;
    assert.equal(signToken(SECRET, 'bob', exp), mint('bob', exp));
    assert.deepEqual(verifyToken(SECRET, mint('bob', exp)), { sub: 'bob', exp });
    assert.equal(verifyToken(SECRET, mint('bob', exp), exp), 'token_expired');
    assert.throws(() => signToken(SECRET, 'not ok', exp), /sub must be/);
  });
});

test('without TOKEN_SECRET the node refuses to start, naming the variable', async () => {
  const saved = process.env.TOKEN_SECRET;
  process.env.TOKEN_SECRET = 'short';
  try {
    await assert.rejects(startNode({ SOCKET_HANDLER: './examples/handlers/hmac-token.ts' }), /TOKEN_SECRET must be set to a secret of at least 32 bytes/);
  } finally {
    if (saved === undefined) delete process.env.TOKEN_SECRET;
    else process.env.TOKEN_SECRET = saved;
  }
});
