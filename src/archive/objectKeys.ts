/**
 * Object keys of the S3 store: `<prefix>/<kind>/<id>/gen-<n>/<seq>.parquet` per chunk and
 * `<prefix>/<kind>/<id>/gen-<n>/manifest.json` per generation. Kind and id are percent-encoded (an id
 * may hold `/` or anything else a URL would read), the sequence zero-padded so a listing sorts in
 * chunk order.
 */
import type { ChunkKey } from './store';

const segment = (text: string) => encodeURIComponent(text);

export function generationPrefix(prefix: string, key: ChunkKey): string {
  const path = `${segment(key.message_kind)}/${segment(key.message_id)}/gen-${key.generation}`;
  return prefix ? `${prefix}/${path}` : path;
}

export function chunkObjectKey(prefix: string, key: ChunkKey, seq: number): string {
  return `${generationPrefix(prefix, key)}/${String(seq).padStart(6, '0')}.parquet`;
}

export function manifestObjectKey(prefix: string, key: ChunkKey): string {
  return `${generationPrefix(prefix, key)}/manifest.json`;
}
