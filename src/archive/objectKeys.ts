/**
 * Object keys of the S3 store: `<prefix>/<kind>/<id>/gen-<n>/<seq>.parquet` per chunk (`<seq>.<rewrite>.parquet`
 * once an erasure rewrote it) and
 * `<prefix>/<kind>/<id>/gen-<n>/manifest.json` per generation. Kind and id are percent-encoded (an id
 * may hold `/` or anything else a URL would read), the sequence zero-padded so a listing sorts in
 * chunk order.
 */
import { createHash } from 'node:crypto';
import type { ChunkKey } from './store';

/**
 * Gateways over a file system read a key's segments as path names: `.` and `..` would resolve to
 * another directory and a segment past 255 bytes is refused. Such ids (a 64-character id of multi-byte
 * characters, percent-encoded, can be 768 bytes) get a segment derived from them instead; the chunk's
 * own metadata and the generation's manifest.json still name the id itself.
 */
const MAX_SEGMENT_BYTES = 200;

export function keySegment(text: string): string {
  const percent = encodeURIComponent(text);
  const encoded = /^\.+$/.test(percent) ? percent.replace(/\./g, '%2E') : percent;
  if (encoded.length <= MAX_SEGMENT_BYTES) return encoded;
  return `sha256-${createHash('sha256').update(text).digest('hex')}`;
}

const segment = keySegment;

export function generationPrefix(prefix: string, key: ChunkKey): string {
  const path = `${segment(key.message_kind)}/${segment(key.message_id)}/gen-${key.generation}`;
  return prefix ? `${prefix}/${path}` : path;
}

/**
 * A chunk's key; a rewritten chunk (an erasure took rows out of it) has a `variant` naming the rewrite,
 * so the new object never overwrites the one the catalog still names until the swap commits.
 */
export function chunkObjectKey(prefix: string, key: ChunkKey, seq: number, variant?: string): string {
  const suffix = variant ? `.${segment(variant)}` : '';
  return `${generationPrefix(prefix, key)}/${String(seq).padStart(6, '0')}${suffix}.parquet`;
}

export function manifestObjectKey(prefix: string, key: ChunkKey): string {
  return `${generationPrefix(prefix, key)}/manifest.json`;
}
