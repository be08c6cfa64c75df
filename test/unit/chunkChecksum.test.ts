/** The streaming checksum the archive and restore verify with is the codec's checksum, byte for byte. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  canonicalBufferOfRowArrays,
  canonicalBytes,
  canonicalBytesOfRowArrays,
  checksumOfRowArrays,
  columnsOfCanonicalBytes,
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

  it('writes the same canonical bytes piece by piece, for any row count, and reads their columns back', () => {
    for (const n of [1, 255, 256, 257, 777, 3_000]) {
      const rows = Array.from({ length: n }, (_, i) => rowArray(i));
      const whole = canonicalBytesOfRowArrays(rows);
      const pieces = canonicalBufferOfRowArrays(rows);
      assert.ok(pieces.equals(whole), `${n} rows`);
      // Its own ArrayBuffer, so that it can be moved to a thread without taking Node's shared pool along.
      assert.equal(pieces.byteOffset, 0);
      assert.notEqual(pieces.buffer.byteLength, Buffer.poolSize);
      assert.deepEqual(
        columnsOfCanonicalBytes(pieces),
        INTERACTION_COLUMNS.map((_, ci) => rows.map((r) => r[ci])),
      );
    }
    assert.throws(() => columnsOfCanonicalBytes(Buffer.from('{"v":2,"columns":[],"data":[]}')), /not canonical chunk bytes/);
  });
});
