/**
 * The S3 archive store against a real S3 gateway (Versity Gateway over a directory of this file's own)
 * and a real MySQL, at the level of one message (no Temporal): the objects and the bucket's own
 * description, DuckDB reading an archived generation without the service, restores that verify every
 * object and delete it afterwards, generations archived in MySQL before object storage, objects damaged
 * or lost behind the service's back, archives cut short, the gateway stopped and started again
 * mid-archive, and moving MySQL generations to S3.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { after, before, beforeEach, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { configuredStores, type ConfiguredStores } from '../src/archive/configuredStores';
import { moveGenerationsToS3, planMove } from '../src/archive/moveGenerations';
import { mysqlOnly } from '../src/archive/mysqlStore';
import { chunkObjectKey, generationPrefix, manifestObjectKey } from '../src/archive/objectKeys';
import { parquetChunkMetadata } from '../src/archive/parquetChunk';
import { archiveStoreSettings, DEFAULT_MYSQL_URL } from '../src/config';
import type { Db } from '../src/db/knex';
import type { EmbeddedGateway } from '../src/s3/embeddedGateway';
import { embeddedGatewayEnv } from '../src/s3/embeddedGateway';
import type { MessageRef } from '../src/shared/types';
import { archiveMessage } from '../src/storage/archiver';
import { ChunkIntegrityError } from '../src/storage/chunkCodec';
import { ensureHotTable } from '../src/storage/hotTables';
import { restoreMessage } from '../src/storage/restorer';
import { fingerprint } from './faults/support';
import { runCliCaptured } from './support/cli';
import { hotRows, startTestGateway, useThrowawayDatabase, withDatabase } from './support/stack';

const target: MessageRef = { kind: 'campaign', id: 'spring/sale ünï' };
const other: MessageRef = { kind: 'canvas', id: 'neighbour' };

function row(ref: MessageRef, i: number) {
  return {
    event_id: `${ref.id}-${i}`,
    message_kind: ref.kind,
    message_id: ref.id,
    user_id: `user-${i % 37}`,
    event_type: ['received', 'opened', 'clicked'][i % 3],
    variant_id: ref.kind === 'campaign' ? `variant-${i % 2}` : null,
    step_id: ref.kind === 'canvas' ? `step-${i % 3}` : null,
    variation_id: null,
    alias: i % 4 === 0 ? `cta "${i}" \\ é` : null,
    channel: 'email',
    occurred_at: new Date(Date.UTC(2026, 0, 1) + i * 997).toISOString().slice(0, 23).replace('T', ' '),
  };
}

async function seed(db: Db, ref: MessageRef, rows: number, from = 0): Promise<void> {
  const { name } = await ensureHotTable(db, ref);
  for (let i = from; i < from + rows; i += 500) {
    await db(name).insert(Array.from({ length: Math.min(500, from + rows - i) }, (_, k) => row(ref, i + k)));
  }
}

const keyOf = (ref: MessageRef, generation: number) => ({ message_kind: ref.kind, message_id: ref.id, generation });

describe('the S3 archive store', () => {
  const database = useThrowawayDatabase(['interactions', 'archive_chunks', 'archive_manifests', 'move_fences']);
  let db: Db;
  let gw: EmbeddedGateway;
  let archive: ConfiguredStores;
  let prefix: string;

  before(async () => {
    db = database.get();
    gw = await startTestGateway();
    // Short timeouts and few attempts: the stopped-gateway case should fail fast, not after minutes.
    const settings = archiveStoreSettings({ ...embeddedGatewayEnv(gw), S3_MAX_ATTEMPTS: '2', S3_REQUEST_TIMEOUT_MS: '3000' });
    archive = configuredStores(settings);
    prefix = settings.s3?.prefix ?? '';
  });
  after(async () => {
    await archive?.close();
    await gw?.stop();
  });
  beforeEach(async () => {
    for (const t of await db('hot_tables').pluck('table_no')) await db.raw('DROP TABLE IF EXISTS ??', [`interactions_${String(t)}`]);
    await db('hot_tables').delete();
  });

  const objectFile = (ref: MessageRef, generation: number, seq: number) =>
    gw.objectPath(chunkObjectKey(prefix, keyOf(ref, generation), seq));

  it('archives into one Parquet object per chunk, verified, with a manifest.json, and restores from them', async () => {
    await seed(db, target, 1_234);
    await seed(db, other, 300);
    const before = fingerprint(await hotRows(db, target));
    const neighbour = fingerprint(await hotRows(db, other));
    const manifest = await archiveMessage(db, target, 1, { chunkRows: 500, stores: archive.stores });
    assert.equal(manifest.rowCount, 1_234);
    assert.equal(manifest.chunkCount, 3);

    const chunks = await db('archive_chunks').where(keyOf(target, 1)).orderBy('seq');
    assert.deepEqual(
      chunks.map((c: { store: string; payload: Buffer | null; codec: string }) => [c.store, c.payload, c.codec]),
      [
        ['s3', null, 'parquet'],
        ['s3', null, 'parquet'],
        ['s3', null, 'parquet'],
      ],
    );
    for (const c of chunks as { seq: number; object_key: string; bytes: string; checksum: string; row_count: number }[]) {
      assert.equal(c.object_key, chunkObjectKey(prefix, keyOf(target, 1), c.seq));
      const body = readFileSync(gw.objectPath(c.object_key));
      assert.equal(body.length, Number(c.bytes));
      const meta = parquetChunkMetadata(body);
      assert.equal(meta.rows_sha256, c.checksum);
      assert.equal(Number(meta.row_count), c.row_count);
      assert.equal(meta.message_id, target.id);
    }
    const described = JSON.parse(readFileSync(gw.objectPath(manifestObjectKey(prefix, keyOf(target, 1))), 'utf8')) as {
      rowCount: number;
      chunks: { key: string; rows: number }[];
      checksum: string;
    };
    assert.equal(described.rowCount, 1_234);
    assert.equal(described.checksum, manifest.checksum);
    assert.deepEqual(
      described.chunks.map((c) => c.rows),
      [500, 500, 234],
    );
    assert.equal((await hotRows(db, target)).length, 0, 'the hot table is gone');

    const restored = await restoreMessage(db, target, 1, { stores: archive.stores });
    assert.equal(restored.rowCount, 1_234);
    assert.deepEqual(fingerprint(await hotRows(db, target)), before);
    assert.deepEqual(fingerprint(await hotRows(db, other)), neighbour);
    assert.equal((await db('archive_chunks').where(keyOf(target, 1))).length, 0);
    for (const seq of [1, 2, 3]) assert.equal(existsSync(objectFile(target, 1, seq)), false, `object ${seq} deleted after the restore`);
    assert.equal(existsSync(gw.objectPath(manifestObjectKey(prefix, keyOf(target, 1)))), false, 'manifest.json deleted');
  });

  it('is read by DuckDB without the service: exactly the rows that were archived', async () => {
    await seed(db, target, 777);
    const before = await hotRows(db, target);
    await archiveMessage(db, target, 2, { chunkRows: 300, stores: archive.stores });
    const dir = gw.objectPath(generationPrefix(prefix, keyOf(target, 2)));
    const duck = await DuckDBInstance.create(':memory:');
    const conn = await duck.connect();
    // What an analyst runs: every chunk of the generation, typed columns, no restore.
    const result = await conn.runAndReadAll(
      `SELECT id::VARCHAR AS id, event_id, message_kind, message_id, user_id, event_type, variant_id, step_id, variation_id, alias, channel,
              strftime(occurred_at, '%Y-%m-%d %H:%M:%S.%g') AS occurred_at
         FROM read_parquet('${dir}/*.parquet') ORDER BY id::UBIGINT`,
    );
    const rows = result.getRowObjectsJS();
    assert.equal(rows.length, before.length);
    assert.deepEqual(fingerprint(rows as never), fingerprint(before));
    const types = await conn.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${dir}/*.parquet')`);
    const typeOf = Object.fromEntries(types.getRowObjectsJS().map((r) => [r.column_name as string, r.column_type as string]));
    assert.equal(typeOf.id, 'UBIGINT');
    assert.equal(typeOf.occurred_at, 'TIMESTAMP');
    assert.equal(typeOf.user_id, 'VARCHAR');
    conn.closeSync();
    await restoreMessage(db, target, 2, { stores: archive.stores });
  });

  it('restores a generation archived in MySQL before object storage, while new archives go to S3', async () => {
    await seed(db, target, 600);
    const before = fingerprint(await hotRows(db, target));
    await archiveMessage(db, target, 3, { chunkRows: 250, stores: mysqlOnly() });
    assert.deepEqual(await db('archive_chunks').where(keyOf(target, 3)).distinct().pluck('store'), ['mysql']);
    // A late row swept into that generation joins it in MySQL, where the generation is kept.
    await seed(db, target, 1, 600);
    await archiveMessage(db, target, 3, { chunkRows: 250, stores: archive.stores });
    assert.deepEqual(await db('archive_chunks').where(keyOf(target, 3)).distinct().pluck('store'), ['mysql']);
    await restoreMessage(db, target, 3, { stores: archive.stores });
    const after = await hotRows(db, target);
    assert.equal(after.length, 601);
    assert.deepEqual(fingerprint(after.slice(0, 600)), before);
  });

  it('refuses an object changed or lost behind its back, keeping every catalog row and object', async () => {
    await seed(db, target, 900);
    const before = fingerprint(await hotRows(db, target));
    await archiveMessage(db, target, 4, { chunkRows: 300, stores: archive.stores });
    const file = objectFile(target, 4, 2);
    const original = readFileSync(file);
    const damaged = Buffer.from(original);
    damaged[Math.floor(damaged.length / 2)] ^= 0x01;
    writeFileSync(file, damaged);
    await assert.rejects(restoreMessage(db, target, 4, { stores: archive.stores }), ChunkIntegrityError);
    assert.equal((await db('archive_chunks').where(keyOf(target, 4))).length, 3, 'every catalog row kept');
    unlinkSync(file);
    await assert.rejects(restoreMessage(db, target, 4, { stores: archive.stores }), /missing from object storage/);
    assert.equal(existsSync(objectFile(target, 4, 1)), true, 'the other objects are kept');
    // Put back as it was, the generation restores whole.
    writeFileSync(file, original);
    await restoreMessage(db, target, 4, { stores: archive.stores });
    assert.deepEqual(fingerprint(await hotRows(db, target)), before);
  });

  it('resumes an archive cut short after an object was written, storing each row once', async () => {
    await seed(db, target, 1_000);
    const before = fingerprint(await hotRows(db, target));
    await assert.rejects(
      archiveMessage(db, target, 5, {
        chunkRows: 200,
        stores: archive.stores,
        onProgress: (_c, moved) => {
          if (moved === 400) throw new Error('worker killed');
        },
      }),
      /worker killed/,
    );
    // The chunk after the last recorded one may already be in the bucket: the resumed archive writes the same rows there.
    const recorded = await db('archive_chunks').where(keyOf(target, 5)).count<{ n: number }[]>('* as n');
    assert.ok(Number(recorded[0].n) >= 2);
    const manifest = await archiveMessage(db, target, 5, { chunkRows: 200, stores: archive.stores });
    assert.equal(manifest.rowCount, 1_000);
    await restoreMessage(db, target, 5, { stores: archive.stores });
    assert.deepEqual(fingerprint(await hotRows(db, target)), before);
  });

  it('survives the gateway stopping mid-archive: the attempt fails, nothing is dropped, the next attempt finishes', async () => {
    await seed(db, target, 1_500);
    const before = fingerprint(await hotRows(db, target));
    let stopped = false;
    await assert.rejects(
      archiveMessage(db, target, 6, {
        chunkRows: 100,
        stores: archive.stores,
        onProgress: async (_c, moved) => {
          if (moved >= 300 && !stopped) {
            stopped = true;
            await gw.kill();
          }
        },
      }),
    );
    assert.equal((await hotRows(db, target)).length, 1_500, 'every row still hot');
    await gw.restart();
    const manifest = await archiveMessage(db, target, 6, { chunkRows: 100, stores: archive.stores });
    assert.equal(manifest.rowCount, 1_500);
    await restoreMessage(db, target, 6, { stores: archive.stores });
    assert.deepEqual(fingerprint(await hotRows(db, target)), before);
  });

  it('moves MySQL generations to S3, verified and resumable, and they restore from there', async () => {
    const refs: MessageRef[] = [target, other];
    const before = new Map<MessageRef, ReturnType<typeof fingerprint>>();
    for (const ref of refs) {
      await seed(db, ref, 700);
      before.set(ref, fingerprint(await hotRows(db, ref)));
      await archiveMessage(db, ref, 7, { chunkRows: 200, stores: mysqlOnly() });
    }
    const plan = await planMove(db);
    assert.deepEqual([plan.generations, plan.chunks, plan.rows], [2, 8, 1_400]);
    // Cut short after three chunks, as a killed command would be.
    let moved = 0;
    await assert.rejects(
      moveGenerationsToS3(db, archive.stores, {
        onChunk: () => {
          if (++moved === 3) throw new Error('killed');
        },
      }),
      /killed/,
    );
    assert.equal((await planMove(db)).chunks, 5);
    const outcome = await moveGenerationsToS3(db, archive.stores);
    assert.deepEqual([outcome.generations, outcome.chunks, outcome.rows, outcome.skipped], [2, 5, 800, 0]);
    assert.equal((await planMove(db)).chunks, 0);
    for (const ref of refs) {
      const chunks = await db('archive_chunks').where(keyOf(ref, 7));
      assert.ok(chunks.every((c: { store: string; payload: Buffer | null }) => c.store === 's3' && c.payload === null));
      assert.equal((await db('archive_manifests').where(keyOf(ref, 7)).first<{ store: string }>('store'))?.store, 's3');
      assert.ok(existsSync(gw.objectPath(manifestObjectKey(prefix, keyOf(ref, 7)))));
      await restoreMessage(db, ref, 7, { stores: archive.stores });
      assert.deepEqual(fingerprint(await hotRows(db, ref)), before.get(ref));
    }
  });

  it('`archive migrate --to s3` on the command line: refuses what it cannot do, says what it would move, moves it', async () => {
    await seed(db, other, 450, 1_000);
    const before = fingerprint(await hotRows(db, other));
    await archiveMessage(db, other, 8, { chunkRows: 200, stores: mysqlOnly() });
    const env = { ...process.env, ...embeddedGatewayEnv(gw), MYSQL_URL: await databaseUrl(db) };
    const cli = (args: string[], e: NodeJS.ProcessEnv = env) => runCliCaptured(['archive', 'migrate', ...args], e);

    const wrongStore = await cli(['--to', 'mysql']);
    assert.equal(wrongStore.code, 2);
    assert.match(wrongStore.stderr, /--to must be s3/);
    const noS3 = await cli(['--to', 's3'], { ...env, ARCHIVE_STORE: 'mysql', S3_BUCKET: '' });
    assert.equal(noS3.code, 2);
    assert.match(noS3.stderr, /no object store is configured/);
    const badLimit = await cli(['--to', 's3', '--limit', '0']);
    assert.equal(badLimit.code, 2);

    const dry = await cli(['--to', 's3', '--dry-run', '--json']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.deepEqual((JSON.parse(dry.stdout) as { plan: { chunks: number; rows: number } }).plan.chunks, 3);
    assert.deepEqual(await db('archive_chunks').where(keyOf(other, 8)).distinct().pluck('store'), ['mysql'], 'a dry run moves nothing');

    const moved = await cli(['--to', 's3', '--message', `${other.kind}:${other.id}`, '--json']);
    assert.equal(moved.code, 0, moved.stderr);
    assert.deepEqual((JSON.parse(moved.stdout) as { chunks: number; rows: number; generations: number }).rows, 450);
    assert.deepEqual(await db('archive_chunks').where(keyOf(other, 8)).distinct().pluck('store'), ['s3']);
    const again = await cli(['--to', 's3']);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /nothing to move/);
    await restoreMessage(db, other, 8, { stores: archive.stores });
    assert.deepEqual(fingerprint(await hotRows(db, other)), before);
  });
});

/** The URL of the database a knex handle is connected to, for a command that opens its own connection. */
async function databaseUrl(db: Db): Promise<string> {
  const [[row]] = (await db.raw('SELECT DATABASE() AS name')) as [{ name: string }[]];
  return withDatabase(process.env.TEST_MYSQL_URL || process.env.MYSQL_URL || DEFAULT_MYSQL_URL, row.name);
}
