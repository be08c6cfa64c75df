/**
 * `interaction-data archive migrate --to s3`: moves archived generations from the MySQL store to the
 * S3 store, chunk by chunk, and deletes each MySQL copy only once its object is written, read back and
 * checked against the rows' checksum.
 *
 * Per chunk: read from MySQL (verified), written to S3 as Parquet (verified), then in one transaction,
 * with the generation's manifest row locked and still `archived`, the catalog row is switched to the
 * object and its payload dropped. The checksum of the rows stays what it was: the same rows, in
 * another format. A crash anywhere leaves each chunk either in MySQL or switched (its object there),
 * and the next run carries on with the chunks still in MySQL; an object written for a chunk a restore
 * took meanwhile is deleted again. A generation being archived, swept or restored is left for a later
 * run. Once no chunk of a generation is left in MySQL, its new chunks go to S3 too and its
 * manifest.json is written.
 */
import type { Db } from '../db/knex';
import { canonicalChunkOfRowArrays, INTERACTION_COLUMNS, type RowArray } from '../storage/chunkCodec';
import type { ArchiveStore, ArchiveStores, ChunkKey, ChunkRecord } from './store';

export interface MoveOptions {
  /** At most this many generations this run (oldest first). */
  limit?: number;
  /** Only this message's generations. */
  message?: { kind: string; id: string };
  /** Called after each chunk moved, and once per generation left for later with the reason. */
  onChunk?: (key: ChunkKey, seq: number, rows: number) => void;
  onSkipped?: (key: ChunkKey, why: string) => void;
}

export interface MovePlan {
  generations: number;
  chunks: number;
  rows: number;
  bytes: number;
}

export interface MoveOutcome {
  generations: number;
  chunks: number;
  rows: number;
  skipped: number;
}

interface GenerationRow {
  message_kind: string;
  message_id: string;
  generation: number;
}

/** The generations with chunks still in MySQL that may be moved now (archived, not being swept or restored), oldest first. */
async function movableGenerations(db: Db, opts: MoveOptions): Promise<GenerationRow[]> {
  let q = db('archive_manifests as m')
    .where('m.status', 'archived')
    .whereExists(
      db('archive_chunks as c')
        .select(db.raw('1'))
        .whereRaw('c.message_kind = m.message_kind AND c.message_id = m.message_id AND c.generation = m.generation')
        .andWhere('c.store', 'mysql'),
    );
  if (opts.message) q = q.andWhere({ 'm.message_kind': opts.message.kind, 'm.message_id': opts.message.id });
  return q
    .orderBy(['m.archived_at', 'm.message_kind', 'm.message_id', 'm.generation'])
    .limit(opts.limit ?? 1_000_000_000)
    .select<GenerationRow[]>('m.message_kind', 'm.message_id', 'm.generation');
}

/** What a run would move: generations still (partly) in MySQL, their chunks, rows and bytes. */
export async function planMove(db: Db, opts: MoveOptions = {}): Promise<MovePlan> {
  const gens = await movableGenerations(db, opts);
  let chunks = 0;
  let rows = 0;
  let bytes = 0;
  for (const g of gens) {
    const s = await db('archive_chunks')
      .where({ ...g, store: 'mysql' })
      .first<{ n: number | string; r: number | string | null; b: number | string | null }>(
        db.raw('COUNT(*) AS n'),
        db.raw('SUM(row_count) AS r'),
        db.raw('SUM(COALESCE(bytes, LENGTH(payload))) AS b'),
      );
    chunks += Number(s?.n ?? 0);
    rows += Number(s?.r ?? 0);
    bytes += Number(s?.b ?? 0);
  }
  return { generations: gens.length, chunks, rows, bytes };
}

/** Moves the generations planMove lists from `stores.get('mysql')` to `stores.get('s3')`. */
export async function moveGenerationsToS3(db: Db, stores: ArchiveStores, opts: MoveOptions = {}): Promise<MoveOutcome> {
  const from = stores.get('mysql');
  const to = stores.get('s3');
  const gens = await movableGenerations(db, opts);
  const outcome: MoveOutcome = { generations: 0, chunks: 0, rows: 0, skipped: 0 };
  for (const g of gens) {
    const key: ChunkKey = { message_kind: g.message_kind, message_id: g.message_id, generation: Number(g.generation) };
    const why = await moveGeneration(db, from, to, key, opts, outcome);
    if (why) {
      outcome.skipped += 1;
      opts.onSkipped?.(key, why);
    } else {
      outcome.generations += 1;
    }
  }
  return outcome;
}

/** Moves one generation's MySQL chunks; returns why it stopped early, or null when the generation is all in S3. */
async function moveGeneration(
  db: Db,
  from: ArchiveStore,
  to: ArchiveStore,
  key: ChunkKey,
  opts: MoveOptions,
  outcome: MoveOutcome,
): Promise<string | null> {
  const records = await db('archive_chunks')
    .where({ ...key, store: 'mysql' })
    .whereNotNull('verified_at')
    .orderBy('seq')
    .select<ChunkRecord[]>('seq', 'checksum', 'row_count', 'store', 'object_key');
  for (const record of records) {
    const { columns, rowCount } = await from.read(db, key, record);
    const rows: RowArray[] = Array.from({ length: rowCount }, (_, r) => INTERACTION_COLUMNS.map((_c, ci) => columns[ci][r]));
    const written = await to.write(key, record.seq, canonicalChunkOfRowArrays(rows));
    if (written.checksum !== record.checksum) {
      // The rows read back from MySQL were verified against this checksum; a difference here is a bug, not data.
      throw new Error(
        `chunk ${record.seq} of ${key.message_kind}:${key.message_id} generation ${key.generation} changed checksum on the way`,
      );
    }
    const switched = await db.transaction(async (trx) => {
      const manifest = await trx('archive_manifests').where(key).forUpdate().first<{ status: string } | undefined>('status');
      if (manifest?.status !== 'archived') return manifest ? `it is ${manifest.status}` : 'it is gone';
      const n = await trx('archive_chunks')
        .where({ ...key, seq: record.seq, store: 'mysql', checksum: record.checksum })
        .update({
          store: 's3',
          object_key: written.objectKey,
          codec: written.codec,
          bytes: written.bytes,
          payload: null,
          user_filter: written.userFilter,
        });
      return n === 1 ? null : 'its chunk changed meanwhile';
    });
    if (switched) {
      // The catalog never named this object: it must not outlive the run.
      await to.removeBodies(key, [{ ...record, store: 's3', object_key: written.objectKey }]);
      return switched;
    }
    outcome.chunks += 1;
    outcome.rows += rowCount;
    opts.onChunk?.(key, record.seq, rowCount);
  }
  const done = await db.transaction(async (trx) => {
    const manifest = await trx('archive_manifests').where(key).forUpdate().first<{ status: string } | undefined>('status');
    if (manifest?.status !== 'archived') return { why: manifest ? `it is ${manifest.status}` : 'it is gone' };
    const left = await trx('archive_chunks')
      .where({ ...key, store: 'mysql' })
      .first<{ seq: number } | undefined>('seq');
    if (left) return { why: 'chunks were added to it in MySQL meanwhile; run again' };
    const sums = await trx('archive_chunks')
      .where(key)
      .whereNotNull('verified_at')
      .first<{ n: number | string; r: number | string | null; b: number | string | null }>(
        trx.raw('COUNT(*) AS n'),
        trx.raw('SUM(row_count) AS r'),
        trx.raw('SUM(bytes) AS b'),
      );
    // The chunk size its MySQL chunks were cut at, pinned for the sweeps that now append to S3.
    const cut = await trx('archive_chunks').where(key).max<{ m: number | null }>('row_count as m').first();
    await trx('archive_manifests')
      .where(key)
      .update({
        store: 's3',
        compressed_bytes: Number(sums?.b ?? 0),
        chunk_rows: trx.raw('COALESCE(chunk_rows, ?)', [Number(cut?.m ?? 0) || null]),
      });
    return {
      why: null,
      manifest: await trx('archive_manifests')
        .where(key)
        .first<{ row_count: number | string; chunk_count: number; compressed_bytes: number | string; checksum: string }>(
          'row_count',
          'chunk_count',
          'compressed_bytes',
          'checksum',
        ),
    };
  });
  if (done.why !== null) return done.why;
  if (done.manifest) {
    await to.describeGeneration(db, key, {
      status: 'archived',
      rowCount: Number(done.manifest.row_count),
      chunkCount: Number(done.manifest.chunk_count),
      bytes: Number(done.manifest.compressed_bytes),
      checksum: done.manifest.checksum,
    });
    await db('archive_manifests').where(key).update({ described_checksum: done.manifest.checksum });
  }
  return null;
}
