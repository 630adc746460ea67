/**
 * The placement key of a query string (`?key=`, DESIGN.md "Keyed placement"), parsed the same way by the gateway's
 * `/ws/assign` and the socket node's connect: percent-decoded like any query value, then checked against
 * PLACEMENT_KEY, so an encoded hostile value (`%2F`, `%00`, `+`) is as invalid as a raw one.
 */
import { CONNECT_PREFIX, CONNECT_SUFFIX, PLACEMENT_KEY, PLACEMENT_KEY_PARAM } from './constants.js';

/** No key, a valid key, or a `key` parameter that is not one (empty, too long, other characters, or repeated). */
export type PlacementKeyParse = { kind: 'none' } | { kind: 'key'; key: string } | { kind: 'invalid' };

const NONE: PlacementKeyParse = { kind: 'none' };
const INVALID: PlacementKeyParse = { kind: 'invalid' };

/** Parse `?key=` of a raw query string (without the `?`). Never throws. */
export function parsePlacementKey(query: string): PlacementKeyParse {
  // Most requests carry no key: skip the parse unless the name could be there, plainly or percent-encoded.
  if (!query.includes(PLACEMENT_KEY_PARAM) && !query.includes('%')) return NONE;
  const values = new URLSearchParams(query).getAll(PLACEMENT_KEY_PARAM);
  if (values.length === 0) return NONE;
  // Two keys would let the gateway and an application's hook read different ones.
  if (values.length > 1 || !PLACEMENT_KEY.test(values[0]!)) return INVALID;
  return { kind: 'key', key: values[0]! };
}

/** The pinned connect path of `podId`, carrying `key` when given: `/ws/<podId>/connect?key=<key>` (key characters need no escaping). */
export function connectPath(podId: string, key?: string): string {
  return `${CONNECT_PREFIX}${podId}${CONNECT_SUFFIX}${key === undefined ? '' : `?${PLACEMENT_KEY_PARAM}=${key}`}`;
}
