/** The `409 key_moved` answer of a connect whose key another pod owns (DESIGN.md "Keyed placement"). */
import { ASSIGN_PATH, PLACEMENT_KEY_PARAM } from '../src/constants.js';
import { ERRORS } from '../src/errors.js';
import { jsonReply, type Reply } from '../src/http.js';
import { connectPath } from '../src/placement-key.js';

/**
 * `409 {"error":"key_moved","message","key","podId","url","assignUrl"}`: `url` is the owner's pinned connect URL
 * (with the key), or null when no pod may take the key here (this pod is cordoned); `assignUrl` always works.
 */
export function keyMovedReply(key: string, owner: string | undefined): Reply {
  const spec = ERRORS.EDGE_ERR_KEY_MOVED;
  return jsonReply(spec.status, {
    error: spec.code,
    message: spec.message,
    key,
    podId: owner ?? null,
    url: owner === undefined ? null : connectPath(owner, key),
    assignUrl: `${ASSIGN_PATH}?${PLACEMENT_KEY_PARAM}=${key}`,
  });
}
