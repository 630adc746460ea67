/** CIDR lists (GATEWAY_POD_CIDRS, GATEWAY_TRUSTED_PROXIES): parse with clear errors, match with node's BlockList. */
import net from 'node:net';

const MAX_PREFIX = { 4: 32, 6: 128 } as const;
/** `::ffff:a.b.c.d`, as a dual-stack socket reports an IPv4 peer. */
const V4_MAPPED = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

/** Parse one entry (`10.0.0.0/8`, `fd00::/8`, or a bare address = /32 or /128) into `addr/prefix`; throws with the reason. */
function parseEntry(entry: string): string {
  const slash = entry.indexOf('/');
  const addr = slash < 0 ? entry : entry.slice(0, slash);
  if (addr.includes('%')) throw new Error('a zone index (%…) is not allowed in a CIDR');
  const family = net.isIP(addr);
  if (family === 0) throw new Error(`"${addr}" is not an IPv4 or IPv6 address`);
  const max = MAX_PREFIX[family as 4 | 6];
  if (slash < 0) return `${addr}/${max}`;
  const prefix = entry.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max) throw new Error(`prefix "/${prefix}" must be an integer from 0 to ${max} for IPv${family}`);
  return `${addr}/${Number(prefix)}`;
}

/**
 * Parse a comma-separated CIDR list into canonical `addr/prefix` entries (whitespace around entries ignored,
 * an empty string is an empty list). Throws one Error naming every bad entry.
 */
export function parseCidrList(raw: string): string[] {
  if (raw.trim() === '') return [];
  const out: string[] = [];
  const problems: string[] = [];
  for (const part of raw.split(',')) {
    const entry = part.trim();
    if (entry === '') {
      problems.push('empty entry (two commas in a row, or a trailing comma)');
      continue;
    }
    try {
      out.push(parseEntry(entry));
    } catch (err) {
      problems.push(`"${entry}": ${(err as Error).message}`);
    }
  }
  if (problems.length > 0) throw new Error(`bad CIDR list: ${problems.join('; ')}`);
  return out;
}

/** Answers whether an address falls in a CIDR list. */
export interface CidrMatcher {
  /** How many entries the list has (0: the caller decides what an empty list means). */
  readonly size: number;
  /** True when `address` (an IP literal; IPv4-mapped IPv6 counts as its IPv4 address) is in the list. Never throws. */
  contains(address: string): boolean;
}

/** Build a matcher from entries returned by parseCidrList. */
export function createCidrMatcher(cidrs: readonly string[]): CidrMatcher {
  const list = new net.BlockList();
  for (const cidr of cidrs) {
    const [addr = '', prefix = ''] = parseEntry(cidr).split('/');
    list.addSubnet(addr, Number(prefix), net.isIP(addr) === 4 ? 'ipv4' : 'ipv6');
  }
  return {
    size: cidrs.length,
    contains(address) {
      // A peer's link-local zone names the local interface, not part of the address a CIDR describes.
      const bare = address.replace(/%.*$/, '');
      const mapped = V4_MAPPED.exec(bare)?.[1];
      const addr = mapped && net.isIP(mapped) === 4 ? mapped : bare;
      const family = net.isIP(addr);
      if (family === 0) return false;
      return list.check(addr, family === 4 ? 'ipv4' : 'ipv6');
    },
  };
}
