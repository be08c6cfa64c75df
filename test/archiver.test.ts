/**
 * The archive's per-chunk protocol when the hot store changes under it (no Temporal needed): a row
 * changed while the archive runs, a late row committed inside a chunk's id range, a crash that left a
 * committed chunk unverified, two messages archived at once. Nothing may be lost, doubled, or archived
 * in a stale version, and the other messages' rows sharing the id range are never touched.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import type { Db } from '../src/db/knex';
import type { ArchiveManifest, MessageRef } from '../src/shared/types';
import { archiveMessage } from '../src/storage/archiver';
import { canonicalBytes, ChunkIntegrityError, CHUNK_CODEC, decodeChunk, encodeChunk, sha256, type InteractionRow } from '../src/storage/chunkCodec';
import { restoreMessage } from '../src/storage/restorer';
import { hotRows, useThrowawayDatabase } from './support/stack';

const target: MessageRef = { kind: 'campaign', id: 'races' };
const other: MessageRef = { kind: 'canvas', id: 'neighbour' };

/** Rows of both messages alternate in id order, so every chunk's id range also holds the neighbour's rows. */
async function seed(db: Db, pairs: number): Promise<void> {
  const rows = [];
  for (let i = 0; i < pairs; i++) {
    for (const ref of [target, other]) {
      rows.push({
        event_id: `${ref.id}-${i}-${randomBytes(4).toString('hex')}`,
        message_kind: ref.kind,
        message_id: ref.id,
        user_id: `user-${i % 37}`,
        event_type: ['received', 'opened', 'clicked'][i % 3],
        variant_id: ref.kind === 'campaign' ? `variant-${i % 2}` : null,
        step_id: ref.kind === 'canvas' ? `step-${i % 3}` : null,
        variation_id: null,
        alias: i % 4 === 0 ? `cta ${i}` : null,
        channel: 'email',
        occurred_at: new Date(Date.UTC(2026, 0, 1) + i * 997).toISOString().slice(0, 23).replace('T', ' '),
      });
    }
  }
  for (let i = 0; i < rows.length; i += 500) await db('interactions').insert(rows.slice(i, i + 500));
}

/** Every row of the archive of one generation, decoded, in id order. */
async function archivedRows(db: Db, ref: MessageRef, generation = 1): Promise<InteractionRow[]> {
  const chunks = (await db('archive_chunks')
    .where({ message_kind: ref.kind, message_id: ref.id, generation })
    .whereNotNull('verified_at')
    .orderBy('seq')) as { payload: Buffer; checksum: string; row_count: number }[];
  const rows: InteractionRow[] = [];
  for (const c of chunks) rows.push(...(await decodeChunk(c.payload, { checksum: c.checksum, rowCount: Number(c.row_count) })));
  return rows.sort((a, b) => Number(a.id) - Number(b.id));
}

/**
 * The target's rows all left the hot store and are archived, each once; the neighbour's rows, which
 * share the chunks' id ranges, are as they were. Returns the archived rows.
 */
async function assertWholeMessageArchived(db: Db, manifest: ArchiveManifest, before: InteractionRow[], neighbour: InteractionRow[]): Promise<InteractionRow[]> {
  assert.equal(manifest.rowCount, before.length);
  assert.equal((await hotRows(db, target)).length, 0);
  const archived = await archivedRows(db, target);
  assert.deepEqual(
    archived.map((r) => r.id),
    before.map((r) => r.id),
    'every row once',
  );
  assert.deepEqual(await hotRows(db, other), neighbour, "the neighbour's rows in the same id ranges are untouched");
  return archived;
}

for (const deleteReturning of [true, false]) describe(`archive protocol under concurrent change (${deleteReturning ? 'DELETE ... RETURNING' : 'lock, compare, delete'})`, () => {
  const database = useThrowawayDatabase(['interactions', 'archive_chunks', 'archive_manifests']);
  let db: Db;
  before(() => {
    db = database.get();
  });

  if (deleteReturning)
    it('archives each row as it was when its chunk took it, whether changed before or after', async () => {
      await seed(db, 350);
      const neighbour = await hotRows(db, other);
      const before = await hotRows(db, target);
      // Chunk 2 (rows 100-199) has been taken when chunk 1 reports, chunk 3 (200-299) not yet.
      const [taken, notYet] = [before[150], before[250]];
      let updated: { taken: number; notYet: number } | undefined;
      const manifest = await archiveMessage(db, target, 1, {
        chunkRows: 100,
        deleteReturning,
        onProgress: async (_cursor, moved) => {
          if (moved === 100 && !updated) {
            const change = (id: string | null) => db('interactions').where({ id }).update({ alias: 'changed while archiving' });
            updated = { notYet: await change(notYet.id), taken: await change(taken.id) };
          }
        },
      });
      assert.deepEqual(updated, { taken: 0, notYet: 1 }, 'a taken row is gone from the hot table; a row not yet taken is still there');
      const archived = await assertWholeMessageArchived(db, manifest, before, neighbour);
      assert.equal(archived.find((r) => r.id === notYet.id)?.alias, 'changed while archiving');
      assert.equal(archived.find((r) => r.id === taken.id)?.alias, taken.alias);
    });

  if (!deleteReturning) it('archives the new version of a row changed after its chunk was read', async () => {
    await seed(db, 350);
    const neighbour = await hotRows(db, other);
    const before = await hotRows(db, target);
    const victim = before[150];
    let changed = false;
    const manifest = await archiveMessage(db, target, 1, {
      chunkRows: 100,
      deleteReturning,
      // One chunk deleted at a time, so that chunk 2 is committed but not yet re-read when this runs.
      parallelDeletes: 1,
      onProgress: async (_cursor, moved) => {
        // Chunk 2 (rows 100-199) has already been read, compressed and committed while chunk 1 was moved.
        if (moved === 100 && !changed) {
          changed = true;
          await db('interactions').where({ id: victim.id }).update({ alias: 'changed while archiving' });
        }
      },
    });
    assert.ok(changed);
    const archived = await assertWholeMessageArchived(db, manifest, before, neighbour);
    assert.equal(archived.find((r) => r.id === victim.id)?.alias, 'changed while archiving');
  });

  it('never deletes a late row committed inside a chunk it did not read, and archives it in the final pass', async () => {
    await seed(db, 350);
    const before = await hotRows(db, target);
    // Free an id inside chunk 3's range (rows 200-299) by removing a neighbour row there.
    const [freeId] = (await db('interactions')
      .where({ message_kind: other.kind, message_id: other.id })
      .andWhere('id', '>', before[250].id as string)
      .orderBy('id')
      .limit(1)
      .pluck('id')) as string[];
    await db('interactions').where({ id: freeId }).delete();
    let inserted = false;
    const manifest = await archiveMessage(db, target, 1, {
      chunkRows: 100,
      deleteReturning,
      onProgress: async (_cursor, moved) => {
        if (moved === 200 && !inserted) {
          inserted = true;
          // Chunk 3 was read before this row existed: its id range now holds a row it never saw, which
          // must stay hot until the pass from the start archives it.
          await db('interactions').insert({ ...before[0], id: freeId, event_id: `late-${randomBytes(4).toString('hex')}` });
        }
      },
    });
    assert.ok(inserted);
    assert.equal(manifest.rowCount, 351);
    assert.equal((await hotRows(db, target)).length, 0);
    const archived = await archivedRows(db, target);
    assert.equal(new Set(archived.map((r) => r.id)).size, 351, 'no row twice');
    assert.ok(archived.some((r) => r.id === String(freeId)), 'the late row is archived too');
  });

  it('archives two messages whose rows alternate at the same time, each row once', async () => {
    await seed(db, 1_000);
    const [targetBefore, otherBefore] = [await hotRows(db, target), await hotRows(db, other)];
    const [a, b] = await Promise.all([
      archiveMessage(db, target, 1, { chunkRows: 50, deleteReturning }),
      archiveMessage(db, other, 1, { chunkRows: 50, deleteReturning }),
    ]);
    assert.deepEqual([a.rowCount, b.rowCount], [1_000, 1_000]);
    assert.equal(Number((await db('interactions').count<{ n: number }[]>('* as n'))[0].n), 0);
    const plain = (rows: InteractionRow[]) => rows.map((r) => ({ ...r }));
    assert.deepEqual(plain(await archivedRows(db, target)), plain(targetBefore));
    assert.deepEqual(plain(await archivedRows(db, other)), plain(otherBefore));
  });

  it('finishes a chunk left committed but unverified, or drops it when the hot rows moved on', async () => {
    await seed(db, 300);
    const original = await hotRows(db, target);
    // A crash after committing chunk 1 and before deleting its rows.
    const first = await encodeChunk(original.slice(0, 100));
    const key = { message_kind: target.kind, message_id: target.id, generation: 1 };
    await db('archive_manifests').insert({ ...key, status: 'archiving' });
    await db('archive_chunks').insert({
      ...key,
      seq: 1,
      first_id: first.firstId,
      last_id: first.lastId,
      row_count: first.rowCount,
      checksum: first.checksum,
      codec: CHUNK_CODEC,
      payload: first.payload,
    });
    // ...and one that no longer matches: a row in its range changed after it was committed.
    const second = await encodeChunk(original.slice(100, 200));
    await db('archive_chunks').insert({
      ...key,
      seq: 2,
      first_id: second.firstId,
      last_id: second.lastId,
      row_count: second.rowCount,
      checksum: second.checksum,
      codec: CHUNK_CODEC,
      payload: second.payload,
    });
    await db('interactions').where({ id: original[120].id }).update({ channel: 'push' });

    const manifest = await archiveMessage(db, target, 1, { chunkRows: 100, deleteReturning });
    assert.equal(manifest.rowCount, 300);
    const archived = await archivedRows(db, target);
    assert.deepEqual(
      archived.map((r) => r.id),
      original.map((r) => r.id),
    );
    assert.equal(archived.find((r) => r.id === original[120].id)?.channel, 'push', 'the stale chunk was dropped, not kept');

    await restoreMessage(db, target, 1, { insertReturning: deleteReturning });
    const back = await hotRows(db, target);
    const expected = original.map((r) => (r.id === original[120].id ? { ...r, channel: 'push' } : r));
    assert.equal(sha256(canonicalBytes(back)), sha256(canonicalBytes(expected)), 'restored byte for byte');
  });

  it('restores over rows an interrupted restore already put back, keeping each row once', async () => {
    await seed(db, 300);
    const original = await hotRows(db, target);
    await archiveMessage(db, target, 1, { chunkRows: 100, deleteReturning });
    assert.equal((await hotRows(db, target)).length, 0);
    // An earlier attempt died part-way through chunk 2: some of its statements went in, and one row
    // of a statement that had not.
    const partial = [...original.slice(100, 140), original[175]];
    await db('interactions').insert(partial);
    await restoreMessage(db, target, 1, { insertBatch: 20, insertConnections: 2, insertReturning: deleteReturning });
    const back = await hotRows(db, target);
    assert.equal(back.length, original.length, 'no row doubled, none lost');
    assert.equal(sha256(canonicalBytes(back)), sha256(canonicalBytes(original)), 'restored byte for byte');
  });

  it('restores values with quotes, backslashes, placeholders and non-ASCII text exactly as they were', async () => {
    // The restore's INSERT statements carry the values as text, escaped by the driver, and its check
    // compares what they return: every character the escaping has to handle must come back unchanged.
    const awkward = ["it's", 'back\\slash\\', 'a ? b ?? c', '"quoted"', 'line\nbreak\ttab\r', 'nul\u0000byte', '\u001a ctrl-z', 'Grüße 🎉 中文', "'); DROP TABLE interactions; --", '%_'];
    const rows = awkward.map((text, i) => ({
      event_id: `awkward-${i}-${randomBytes(4).toString('hex')}`,
      message_kind: target.kind,
      message_id: target.id,
      user_id: text,
      event_type: 'clicked',
      variant_id: null,
      step_id: null,
      variation_id: null,
      alias: text,
      channel: 'email',
      occurred_at: '2026-01-02 03:04:05.678',
    }));
    await db('interactions').insert(rows);
    const original = await hotRows(db, target);
    assert.deepEqual(original.map((r) => r.alias), awkward, 'the values went in as written');
    await archiveMessage(db, target, 1, { chunkRows: 4, deleteReturning });
    assert.equal((await hotRows(db, target)).length, 0);
    await restoreMessage(db, target, 1, { insertBatch: 3, insertReturning: deleteReturning });
    const back = await hotRows(db, target);
    assert.deepEqual(back, original, 'restored value for value');
  });

  it('refuses to call a restore done when a row already in the hot store differs from the archive', async () => {
    await seed(db, 300);
    const original = await hotRows(db, target);
    await archiveMessage(db, target, 1, { chunkRows: 100, deleteReturning });
    // A row with an archived id, but not the archived row: the insert keeps it as it is, and the
    // check must see the stored row, not the values the restore sent.
    await db('interactions').insert({ ...original[150], channel: 'not-the-archived-value' });
    await assert.rejects(restoreMessage(db, target, 1, { insertBatch: 20, insertReturning: deleteReturning }), ChunkIntegrityError);
    const manifest = await db('archive_manifests').where({ message_kind: target.kind, message_id: target.id, generation: 1 }).first<{ status: string }>();
    assert.notEqual(manifest?.status, 'restored', 'the manifest is not marked restored');
    assert.equal(Number((await db('archive_chunks').where({ message_kind: target.kind, message_id: target.id, generation: 1 }).count<{ n: number }[]>('* as n'))[0].n), 3, 'the long-term copy is kept');
  });
});
