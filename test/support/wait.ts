/** Polling for tests that wait on another process (an API server, a controller): until `fn` yields a value. */

/** Call `fn` every 100 ms until it resolves to something other than undefined (rejections count as "not yet"). */
export async function waitUntil<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what} not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
