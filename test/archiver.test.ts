/**
 * The archive and the restore at the level of one message's table (no Temporal needed): rows written
 * while an archive runs, an archive cut short and resumed, chunks the stored ones fail to account for,
 * chunks left unverified by the earlier protocol, two messages at once, and restores over rows already
 * there. Nothing may be lost, doubled, or archived in a stale version, and the other message's rows are
 * never touched.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import type { Db } from '../src/db/knex';
import type { MessageRef } from '../src/shared/types';
import { ArchiveConflictError, archiveMessage } from '../src/storage/archiver';
import {
  canonicalBytes,
  ChunkIntegrityError,
  CHUNK_CODEC,
  compareIds,
  decodeChunk,
  encodeChunk,
  sha256,
  type InteractionRow,
} from '../src/storage/chunkCodec';
import { ensureHotTable, firstIdOf, hotTableExists } from '../src/storage/hotTables';
import { restoreMessage } from '../src/storage/restorer';
import { hotRows, useThrowawayDatabase } from './support/stack';

const target: MessageRef = { kind: 'campaign', id: 'races' };
const other: MessageRef = { kind: 'canvas', id: 'neighbour' };

function row(ref: MessageRef, i: number, tag = randomBytes(4).toString('hex')) {
  return {
    event_id: `${ref.id}-${i}-${tag}`,
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
  };
}

/** `rows` rows of each message, each message in its own table, written in turns. */
async function seed(db: Db, rows: number): Promise<void> {
  for (let i = 0; i < rows; i += 250) {
    for (const ref of [target, other]) {
      const { name } = await ensureHotTable(db, ref);
      await db(name).insert(Array.from({ length: Math.min(250, rows - i) }, (_, k) => row(ref, i + k)));
    }
  }
}

/** Inserts rows into the message's current table, as ingestion would. */
async function insertHot(db: Db, ref: MessageRef, rows: object[]): Promise<void> {
  await db((await ensureHotTable(db, ref)).name).insert(rows);
}

/** Every row of the archive of one generation, decoded, in id order. */
async function archivedRows(db: Db, ref: MessageRef, generation = 1): Promise<InteractionRow[]> {
  const chunks = (await db('archive_chunks')
    .where({ message_kind: ref.kind, message_id: ref.id, generation })
    .whereNotNull('verified_at')
    .orderBy('seq')) as { payload: Buffer; checksum: string; row_count: number }[];
  const rows: InteractionRow[] = [];
  for (const c of chunks) rows.push(...(await decodeChunk(c.payload, { checksum: c.checksum, rowCount: Number(c.row_count) })));
  return rows.sort((a, b) => compareIds(String(a.id), String(b.id)));
}

/** An archive of the target in chunks of 100 that dies once `rows` rows are stored, as a killed worker would. */
async function archiveCutShortAfter(db: Db, rows: number): Promise<void> {
  await assert.rejects(
    archiveMessage(db, target, 1, {
      chunkRows: 100,
      onProgress: (_cursor, moved) => {
        if (moved === rows) throw new Error('worker killed');
      },
    }),
    /worker killed/,
  );
}

const roles = async (db: Db, ref: MessageRef) =>
  ((await db('hot_tables').where({ message_kind: ref.kind, message_id: ref.id }).orderBy('table_no').pluck('role')) as string[]).join(',');

describe("archive of a message's table", () => {
  const database = useThrowawayDatabase(['interactions', 'archive_chunks', 'archive_manifests', 'move_fences']);
  let db: Db;
  before(() => {
    db = database.get();
  });

  it('archives every row once, drops the table, and leaves the other message alone', async () => {
    await seed(db, 350);
    const [before, neighbour] = [await hotRows(db, target), await hotRows(db, other)];
    const manifest = await archiveMessage(db, target, 1, { chunkRows: 100 });
    assert.equal(manifest.rowCount, 350);
    assert.equal(manifest.chunkCount, 4);
    assert.deepEqual(await archivedRows(db, target), before);
    assert.deepEqual(await hotRows(db, target), []);
    assert.equal(await roles(db, target), '', 'the drained table is gone, and none is made until a row arrives');
    assert.deepEqual(await hotRows(db, other), neighbour);
  });

  it('drops an empty current table, and makes the next one only when a row arrives', async () => {
    const empty = await ensureHotTable(db, target, { ownFromRows: 0 });
    const manifest = await archiveMessage(db, target, 1, { chunkRows: 100 });
    assert.equal(manifest.rowCount, 0);
    assert.equal(await roles(db, target), '');
    assert.equal(await hotTableExists(db, empty), false, 'the empty table is dropped');
    const next = await ensureHotTable(db, target, { ownFromRows: 0 });
    await db(next.name).insert([row(target, 1)]);
    assert.ok(BigInt(next.tableNo) > BigInt(empty.tableNo), 'a new table, with a higher id range');
    assert.equal((await hotRows(db, target)).length, 1);
  });

  it('keeps a row written during the archive hot, in a new table, with a higher id, and the next sweep archives it', async () => {
    await seed(db, 350);
    const before = await hotRows(db, target);
    let late: InteractionRow | undefined;
    const manifest = await archiveMessage(db, target, 1, {
      chunkRows: 100,
      onProgress: async (_cursor, moved) => {
        if (moved === 100 && !late) {
          await insertHot(db, target, [row(target, 9_999, 'late')]);
          [late] = await hotRows(db, target).then((rows) => rows.filter((r) => String(r.event_id).endsWith('-late')));
        }
      },
    });
    assert.ok(late);
    assert.equal(manifest.rowCount, 350, 'the archive took the table as it was when it was swapped out');
    assert.deepEqual(await hotRows(db, target), [late]);
    assert.ok(compareIds(String(late.id), String(before[before.length - 1].id)) > 0, 'ids keep rising across tables');
    const current = await ensureHotTable(db, target);
    assert.ok(compareIds(String(late.id), firstIdOf(current.tableNo)) >= 0, "the new table's id range");

    const swept = await archiveMessage(db, target, 1, { chunkRows: 100 });
    assert.equal(swept.rowCount, 351);
    assert.deepEqual(await hotRows(db, target), []);
    assert.deepEqual(await archivedRows(db, target), [...before, late]);
  });

  it('resumes an archive cut short after the chunks it stored, and stores each row once', async () => {
    await seed(db, 350);
    const before = await hotRows(db, target);
    await archiveCutShortAfter(db, 200);
    assert.equal(await roles(db, target), 'draining', 'the table is out of service; a new one is made when a row arrives');
    assert.deepEqual(await hotRows(db, target), before, 'every row still hot in the table being drained');
    assert.ok((await archivedRows(db, target)).length >= 200);

    const manifest = await archiveMessage(db, target, 1, { chunkRows: 100 });
    assert.equal(manifest.rowCount, 350);
    assert.deepEqual(await archivedRows(db, target), before, 'each row once');
    assert.deepEqual(await hotRows(db, target), []);
  });

  it('keeps the table when its stored chunks do not account for every row', async () => {
    await seed(db, 350);
    const before = await hotRows(db, target);
    await archiveCutShortAfter(db, 200);
    // A chunk lost from long-term storage in between: the resume must not drop rows it never stored.
    await db('archive_chunks').where({ message_kind: target.kind, message_id: target.id, generation: 1, seq: 1 }).delete();
    await assert.rejects(archiveMessage(db, target, 1, { chunkRows: 100 }), ArchiveConflictError);
    assert.deepEqual(await hotRows(db, target), before, 'nothing dropped');
  });

  it('archives two messages at the same time, each row once', async () => {
    await seed(db, 1_000);
    const [targetBefore, otherBefore] = [await hotRows(db, target), await hotRows(db, other)];
    const [a, b] = await Promise.all([archiveMessage(db, target, 1, { chunkRows: 50 }), archiveMessage(db, other, 1, { chunkRows: 50 })]);
    assert.deepEqual([a.rowCount, b.rowCount], [1_000, 1_000]);
    assert.deepEqual([await hotRows(db, target), await hotRows(db, other)], [[], []]);
    const plain = (rows: InteractionRow[]) => rows.map((r) => ({ ...r }));
    assert.deepEqual(plain(await archivedRows(db, target)), plain(targetBefore));
    assert.deepEqual(plain(await archivedRows(db, other)), plain(otherBefore));
  });

  it('stores again the rows of a chunk the earlier protocol left unverified', async () => {
    await seed(db, 300);
    const original = await hotRows(db, target);
    // That protocol committed a chunk, then deleted its rows and marked it verified together: a crash in
    // between left the chunk unverified and its rows hot.
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
    const manifest = await archiveMessage(db, target, 1, { chunkRows: 100 });
    assert.equal(manifest.rowCount, 300);
    assert.deepEqual(await archivedRows(db, target), original);
  });
});

for (const insertReturning of [true, false])
  describe(`restore into a message's table (${insertReturning ? 'INSERT ... RETURNING' : 'read back'})`, () => {
    const database = useThrowawayDatabase(['interactions', 'archive_chunks', 'archive_manifests', 'move_fences']);
    let db: Db;
    before(() => {
      db = database.get();
    });

    it('restores over rows an interrupted restore already put back, keeping each row once', async () => {
      await seed(db, 300);
      const original = await hotRows(db, target);
      await archiveMessage(db, target, 1, { chunkRows: 100 });
      assert.equal((await hotRows(db, target)).length, 0);
      // An earlier attempt died part-way through chunk 2: some of its statements went in, and one row
      // of a statement that had not.
      const partial = [...original.slice(100, 140), original[175]];
      await insertHot(db, target, partial);
      await restoreMessage(db, target, 1, { insertBatch: 20, insertConnections: 2, insertReturning });
      const back = await hotRows(db, target);
      assert.equal(back.length, original.length, 'no row doubled, none lost');
      assert.equal(sha256(canonicalBytes(back)), sha256(canonicalBytes(original)), 'restored byte for byte');
    });

    it('restores values with quotes, backslashes, placeholders and non-ASCII text exactly as they were', async () => {
      // The restore's INSERT statements carry the values as text, escaped by the driver, and its check
      // compares what they return: every character the escaping has to handle must come back unchanged.
      const awkward = [
        "it's",
        'back\\slash\\',
        'a ? b ?? c',
        '"quoted"',
        'line\nbreak\ttab\r',
        'nul\u0000byte',
        '\u001a ctrl-z',
        'Grüße 🎉 中文',
        "'); DROP TABLE interactions; --",
        '%_',
      ];
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
      await insertHot(db, target, rows);
      const original = await hotRows(db, target);
      assert.deepEqual(
        original.map((r) => r.alias),
        awkward,
        'the values went in as written',
      );
      await archiveMessage(db, target, 1, { chunkRows: 4 });
      assert.equal((await hotRows(db, target)).length, 0);
      await restoreMessage(db, target, 1, { insertBatch: 3, insertReturning });
      const back = await hotRows(db, target);
      assert.deepEqual(back, original, 'restored value for value');
    });

    it('refuses to call a restore done when a row already in the hot store differs from the archive', async () => {
      await seed(db, 300);
      const original = await hotRows(db, target);
      await archiveMessage(db, target, 1, { chunkRows: 100 });
      // A row with an archived id, but not the archived row: the insert keeps it as it is, and the
      // check must see the stored row, not the values the restore sent.
      await insertHot(db, target, [{ ...original[150], channel: 'not-the-archived-value' }]);
      await assert.rejects(restoreMessage(db, target, 1, { insertBatch: 20, insertReturning }), ChunkIntegrityError);
      const manifest = await db('archive_manifests')
        .where({ message_kind: target.kind, message_id: target.id, generation: 1 })
        .first<{ status: string }>();
      assert.notEqual(manifest?.status, 'restored', 'the manifest is not marked restored');
      assert.equal(
        Number(
          (
            await db('archive_chunks')
              .where({ message_kind: target.kind, message_id: target.id, generation: 1 })
              .count<{ n: number }[]>('* as n')
          )[0].n,
        ),
        3,
        'the long-term copy is kept',
      );
    });
  });
