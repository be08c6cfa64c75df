import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  datetimeOfMillis,
  decodeParquetChunk,
  encodeParquetChunk,
  millisOfDatetime,
  parquetChunkMetadata,
  PARQUET_CHUNK_FORMAT,
  parquetUserRows,
} from '../../src/archive/parquetChunk';
import { threadedParquetCodec } from '../../src/archive/parquetCodec';
import { canonicalChunkOfRowArrays, checksumOfRowArrays, ChunkIntegrityError, type RowArray } from '../../src/storage/chunkCodec';

const identity = { kind: 'campaign', id: 'cmp/Ünïcode 1', generation: 2, seq: 7 };

function rows(n: number, firstId = 2n ** 62n + 1n): RowArray[] {
  return Array.from({ length: n }, (_, i) => [
    String(firstId + BigInt(i)),
    `evt-${i}-${'x'.repeat(i % 5)}`,
    'campaign',
    'cmp/Ünïcode 1',
    i % 3 === 0 ? null : `user-${i % 17}`,
    ['send', 'open', 'click'][i % 3],
    i % 2 ? 'variant-a' : null,
    null,
    i % 4 ? null : 'variation "quoted"',
    i % 5 ? null : 'alias,with,commas',
    'email',
    datetimeOfMillis(Date.UTC(2026, 0, 1) + i * 1_001),
  ]);
}

describe('Parquet chunks', () => {
  it('round-trips rows value for value, with the chunk checksum of the MySQL store', async () => {
    const input = rows(1_234);
    const chunk = encodeParquetChunk(input, identity);
    assert.equal(chunk.checksum, checksumOfRowArrays(input));
    assert.equal(chunk.rowCount, 1_234);
    assert.equal(chunk.firstId, input[0][0]);
    assert.equal(chunk.lastId, input[1_233][0]);
    const decoded = await decodeParquetChunk(chunk.body, { checksum: chunk.checksum, rowCount: chunk.rowCount, identity });
    for (let r = 0; r < input.length; r++) {
      assert.deepEqual(
        decoded.columns.map((c) => c[r]),
        input[r],
      );
    }
  });

  it("reads one user's rows from the pages holding them, exactly as the whole chunk holds them", async () => {
    // Enough rows for many pages per column, the user at the edges and in the middle.
    const input = rows(6_000).map((r, i): RowArray =>
      i === 0 || i === 2_999 || i === 5_999 ? r.map((v, c) => (c === 4 ? 'subject' : v)) : r,
    );
    const chunk = encodeParquetChunk(input, identity);
    const expected = { checksum: chunk.checksum, rowCount: chunk.rowCount, identity };
    assert.deepEqual(await parquetUserRows(chunk.body, expected, 'subject'), [input[0], input[2_999], input[5_999]]);
    assert.deepEqual(
      await parquetUserRows(chunk.body, expected, 'user-5'),
      input.filter((r) => r[4] === 'user-5'),
    );
    assert.deepEqual(await parquetUserRows(chunk.body, expected, 'nobody'), []);
    await assert.rejects(parquetUserRows(chunk.body, { ...expected, checksum: 'f'.repeat(64) }, 'subject'), ChunkIntegrityError);
    await assert.rejects(parquetUserRows(chunk.body, { ...expected, identity: { ...identity, seq: 8 } }, 'subject'), ChunkIntegrityError);
  });

  it('describes itself in its key-value metadata', () => {
    const input = rows(10);
    const chunk = encodeParquetChunk(input, identity);
    const meta = parquetChunkMetadata(chunk.body);
    assert.deepEqual(meta, {
      format: PARQUET_CHUNK_FORMAT,
      message_kind: 'campaign',
      message_id: 'cmp/Ünïcode 1',
      generation: '2',
      seq: '7',
      row_count: '10',
      first_id: input[0][0],
      last_id: input[9][0],
      rows_sha256: chunk.checksum,
    });
  });

  it('refuses a chunk whose rows or metadata differ from the catalog', async () => {
    const chunk = encodeParquetChunk(rows(50), identity);
    await assert.rejects(decodeParquetChunk(chunk.body, { checksum: 'f'.repeat(64), rowCount: 50 }), ChunkIntegrityError);
    await assert.rejects(decodeParquetChunk(chunk.body, { checksum: chunk.checksum, rowCount: 49 }), ChunkIntegrityError);
    await assert.rejects(
      decodeParquetChunk(chunk.body, { checksum: chunk.checksum, rowCount: 50, identity: { ...identity, seq: 8 } }),
      ChunkIntegrityError,
    );
    const damaged = Buffer.from(chunk.body);
    damaged[Math.floor(damaged.length / 2)] ^= 0xff;
    await assert.rejects(decodeParquetChunk(damaged, { checksum: chunk.checksum, rowCount: 50 }));
    await assert.rejects(decodeParquetChunk(Buffer.from('not parquet'), { checksum: chunk.checksum, rowCount: 50 }), ChunkIntegrityError);
  });

  it('codes a chunk on a thread as on the calling thread, and one larger than the thread is sized for on the calling thread', async () => {
    const codec = threadedParquetCodec(1, 100);
    try {
      for (const n of [60, 150]) {
        const input = rows(n);
        const expected = encodeParquetChunk(input, identity);
        const chunk = await codec.encode(canonicalChunkOfRowArrays(input), identity);
        assert.ok(chunk.body.equals(expected.body), `${n} rows`);
        assert.equal(chunk.checksum, expected.checksum);
        assert.equal(await codec.decode(chunk.body, { checksum: chunk.checksum, rowCount: n, identity }, true), null);
        await assert.rejects(codec.decode(chunk.body, { checksum: chunk.checksum, rowCount: n + 1, identity }, true), ChunkIntegrityError);
      }
    } finally {
      await codec.close();
    }
  });

  it('keeps DATETIME(3) text exact through the timestamp column', () => {
    for (const text of ['1000-01-01 00:00:00.000', '2026-12-06 17:01:21.999', '9999-12-31 23:59:59.999']) {
      assert.equal(datetimeOfMillis(millisOfDatetime(text)), text);
    }
    // Across DATETIME's range, before the epoch too, as the database writes them (ISO 8601 with a space).
    const lo = Date.UTC(1000, 0, 1);
    const hi = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
    for (let i = 0; i < 2_000; i++) {
      const millis = lo + Math.floor(Math.random() * (hi - lo));
      const text = new Date(millis).toISOString().replace('T', ' ').slice(0, 23);
      assert.equal(datetimeOfMillis(millis), text);
      assert.equal(millisOfDatetime(text), millis);
    }
    for (const bad of [
      'yesterday',
      '2026-12-06T17:01:21.999',
      '2026-12-06 17:01:21',
      '2026-12-06 17:01:2x.999',
      '0999-12-31 23:59:59.999',
    ]) {
      assert.throws(() => millisOfDatetime(bad), ChunkIntegrityError, bad);
    }
  });
});
