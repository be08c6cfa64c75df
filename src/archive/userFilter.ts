/**
 * Which users an archived chunk may hold, without reading it: a Bloom filter of the chunk's user ids,
 * kept in the chunk's catalog row (`archive_chunks.user_filter`, migration 012). A user's privacy
 * request (an access export, an erasure) reads only the chunks whose filter says "maybe": no chunk
 * holding the user is ever skipped, and about one in a hundred of the others is read for nothing.
 * A chunk recorded before filters existed has none, and is always read.
 *
 * Written by hand rather than taken from a package: it runs on every archived row on the archive's
 * main thread, and the packages at hand hash with 64-bit arithmetic in JavaScript objects, many times
 * slower than the two 32-bit hashes here. The bytes are this service's own format, versioned by their
 * first byte: [version 1][k: hashes per id][the bit array].
 */

const VERSION = 1;
const HEADER = 2;
/** The share of users not in a chunk that its filter still lets through. */
const FALSE_POSITIVE_RATE = 0.01;

/** MurmurHash3's 32-bit finalizer: spreads the bits of a hash that similar ids ("user-1", "user-2") left close. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Two independent 32-bit hashes of a string (FNV-1a over its UTF-16 code units from two bases, then fmix32). */
function hashes(id: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ id.length;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  // An odd step visits distinct bits for each of the k probes whatever the filter's size.
  return [fmix32(a), (fmix32(b) | 1) >>> 0];
}

/** The filter of a chunk's user ids (nulls, rows without a user, are left out). */
export function buildUserFilter(userIds: Iterable<string | null>): Buffer {
  const distinct = new Set<string>();
  for (const id of userIds) if (id !== null) distinct.add(id);
  const n = Math.max(1, distinct.size);
  const bits = Math.max(64, Math.ceil((-n * Math.log(FALSE_POSITIVE_RATE)) / Math.LN2 ** 2 / 8) * 8);
  const k = Math.max(1, Math.min(16, Math.round((bits / n) * Math.LN2)));
  const filter = Buffer.alloc(HEADER + bits / 8);
  filter[0] = VERSION;
  filter[1] = k;
  for (const id of distinct) {
    const [h1, h2] = hashes(id);
    for (let i = 0; i < k; i++) {
      const bit = (h1 + i * h2) % bits;
      filter[HEADER + (bit >>> 3)] |= 1 << (bit & 7);
    }
  }
  return filter;
}

/**
 * Whether the chunk may hold the user: false only when it certainly does not. A missing filter, or
 * one in a format this code does not know, answers true.
 */
export function mayHoldUser(filter: Uint8Array | null | undefined, userId: string): boolean {
  if (!filter || filter.length <= HEADER || filter[0] !== VERSION) return true;
  const k = filter[1];
  const bits = (filter.length - HEADER) * 8;
  const [h1, h2] = hashes(userId);
  for (let i = 0; i < k; i++) {
    const bit = (h1 + i * h2) % bits;
    if ((filter[HEADER + (bit >>> 3)] & (1 << (bit & 7))) === 0) return false;
  }
  return true;
}
