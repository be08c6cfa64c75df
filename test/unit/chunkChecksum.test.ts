/** The streaming checksum the archive and restore verify with is the codec's checksum, byte for byte. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  canonicalBytes,
  canonicalBytesOfRowArrays,
  checksumOfRowArrays,
  encodeChunk,
  encodeRowArrays,
  INTERACTION_COLUMNS,
  sha256,
  type InteractionRow,
  type RowArray,
} from '../../src/storage/chunkCodec';

function rowArray(i: number): RowArray {
  return [
    String(10_000_000_000 + i),
    `e-${i}-"quoted"\\back`,
    'canvas',
    'c-1',
    i % 3 ? `u${i}` : "o'brien",
    'clicked',
    null,
    `step-${i % 4}`,
    i % 2 ? null : 'v',
    i % 5 ? null : 'ünïcødé ✓ 😀 \u2028 \u0000',
    'email',
    '2026-01-01 00:00:00.123',
  ];
}

describe('chunk checksum', () => {
  it('hashes column by column to the same digest as the canonical bytes', async () => {
    const rows = Array.from({ length: 777 }, (_, i) => rowArray(i));
    const asObjects = rows.map((r) => Object.fromEntries(INTERACTION_COLUMNS.map((c, ci) => [c, r[ci]])) as InteractionRow);
    const expected = sha256(canonicalBytes(asObjects));
    assert.equal(sha256(canonicalBytesOfRowArrays(rows)), expected);
    assert.equal(checksumOfRowArrays(rows), expected);
    assert.equal((await encodeRowArrays(rows)).checksum, expected);
    assert.equal((await encodeChunk(asObjects)).checksum, expected);
  });
});
