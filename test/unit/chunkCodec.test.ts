import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChunkIntegrityError, decodeChunk, encodeChunk, INTERACTION_COLUMNS, type InteractionRow } from '../../src/storage/chunkCodec';

function row(i: number): InteractionRow {
  const r = Object.fromEntries(INTERACTION_COLUMNS.map((c) => [c, null])) as InteractionRow;
  return {
    ...r,
    id: String(1000 + i),
    event_id: `e${i}`,
    message_kind: 'campaign',
    message_id: 'c1',
    user_id: `u${i % 7}`,
    event_type: 'opened',
    alias: i % 2 ? 'ünïcødé "q"' : null,
    occurred_at: '2026-01-01 00:00:00.123',
  };
}

describe('chunk codec', () => {
  it('round-trips rows exactly and compresses', async () => {
    const rows = Array.from({ length: 2_000 }, (_, i) => row(i));
    const chunk = await encodeChunk(rows);
    assert.equal(chunk.rowCount, 2_000);
    assert.equal(chunk.firstId, '1000');
    assert.equal(chunk.lastId, '2999');
    assert.ok(chunk.payload.length < JSON.stringify(rows).length / 10, `compressed to ${chunk.payload.length} bytes`);
    assert.deepEqual(await decodeChunk(chunk.payload, chunk), rows);
  });

  it('refuses a chunk whose checksum or row count does not match', async () => {
    const chunk = await encodeChunk([row(1), row(2)]);
    await assert.rejects(decodeChunk(chunk.payload, { checksum: '0'.repeat(64), rowCount: 2 }), ChunkIntegrityError);
    await assert.rejects(decodeChunk(chunk.payload, { checksum: chunk.checksum, rowCount: 3 }), ChunkIntegrityError);
  });
});
