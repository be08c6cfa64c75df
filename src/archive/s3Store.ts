/**
 * The S3 store: one Parquet object per chunk (src/archive/parquetChunk.ts) and a manifest.json per
 * generation, in any S3-compatible object storage.
 *
 * A chunk is written with its SHA-256, which the server checks before it accepts the object, then read
 * back and decoded, and its rows' checksum compared with the rows it was made from; only then does its
 * catalog row commit. An object whose catalog row never committed (a crash between the two) sits at
 * the key the next attempt writes the same rows to: the generation's chunk size is pinned and the
 * table being drained no longer changes, so a chunk's key always names the same rows.
 */
import { createHash } from 'node:crypto';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  NoSuchKey,
  PutObjectCommand,
  type S3Client,
  type StorageClass,
} from '@aws-sdk/client-s3';
import type { Knex } from 'knex';
import type { S3Settings } from '../config';
import type { Db } from '../db/knex';
import { ChunkIntegrityError } from '../storage/chunkCodec';
import { chunkObjectKey, manifestObjectKey } from './objectKeys';
import { inlineParquetCodec, type ParquetCodec } from './parquetCodec';
import { PARQUET_CHUNK_FORMAT, PARQUET_CODEC } from './parquetChunk';
import {
  insertChunkRecord,
  replaceChunkRecord,
  type ArchiveStore,
  type ChunkKey,
  type ChunkRecord,
  type GenerationSummary,
  type WrittenChunk,
} from './store';

const PARQUET_CONTENT_TYPE = 'application/vnd.apache.parquet';
/** DeleteObjects takes at most this many keys per request. */
const DELETE_BATCH = 1_000;

const sha256Base64 = (bytes: Uint8Array | string) => createHash('sha256').update(bytes).digest('base64');

export interface S3StoreOptions {
  client: S3Client;
  settings: Pick<S3Settings, 'bucket' | 'prefix' | 'storageClass' | 'endpoint'>;
  /** Where the Parquet encoding and checking run: worker threads, or this thread. */
  codec?: ParquetCodec;
}

export function s3Store({ client, settings, codec = inlineParquetCodec() }: S3StoreOptions): ArchiveStore {
  const { bucket, prefix } = settings;
  const identity = (key: ChunkKey, seq: number) => ({ kind: key.message_kind, id: key.message_id, generation: key.generation, seq });

  /** Writes bytes with their SHA-256, which the server verifies before it keeps the object. */
  async function put(objectKey: string, body: Buffer | string, contentType: string): Promise<string> {
    const checksum = sha256Base64(body);
    await client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: objectKey,
        Body: body,
        ContentType: contentType,
        ChecksumSHA256: checksum,
        ...(settings.storageClass ? { StorageClass: settings.storageClass as StorageClass } : {}),
      }),
    );
    return checksum;
  }

  /**
   * An object's bytes, checked against the SHA-256 the server keeps for it (the SDK compares them);
   * ChunkIntegrityError when it is not there, or when a second read still does not match (a
   * difference in transit does not repeat, a changed object does).
   */
  async function get(objectKey: string, what: string, retried = false): Promise<Uint8Array> {
    const mismatch = (): Promise<Uint8Array> =>
      retried
        ? Promise.reject(
            new ChunkIntegrityError(`${what} (s3://${bucket}/${objectKey}) does not match the SHA-256 the server keeps for it`),
          )
        : get(objectKey, what, true);
    let bytes: Uint8Array;
    let kept: string | undefined;
    try {
      const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: objectKey, ChecksumMode: 'ENABLED' }));
      if (!res.Body) throw new ChunkIntegrityError(`${what} (s3://${bucket}/${objectKey}) came back without a body`);
      bytes = await res.Body.transformToByteArray();
      kept = res.ChecksumSHA256;
    } catch (err) {
      if (err instanceof NoSuchKey || (err as { name?: string }).name === 'NoSuchKey') {
        throw new ChunkIntegrityError(`${what} is missing from object storage (s3://${bucket}/${objectKey})`);
      }
      // The SDK compares the body with the server's checksum itself where it can, and says so this way.
      if (err instanceof Error && err.message.startsWith('Checksum mismatch')) return mismatch();
      throw err;
    }
    if (kept && kept !== sha256Base64(bytes)) return mismatch();
    return bytes;
  }

  /** A recorded chunk's object, checked against the SHA-256 the server keeps for it. */
  async function chunkBytes(key: ChunkKey, record: ChunkRecord): Promise<Uint8Array> {
    if (!record.object_key) throw new ChunkIntegrityError(`chunk ${record.seq} of ${key.message_kind}:${key.message_id} has no object key`);
    return get(record.object_key, `chunk ${record.seq} of ${key.message_kind}:${key.message_id} generation ${key.generation}`);
  }

  /** One DeleteObjects request, or one DeleteObject per key where the server has no batch delete (Cloud Storage's S3 API). */
  async function removeObjects(batch: readonly string[]): Promise<void> {
    if (!batchDelete) {
      for (const Key of batch) await client.send(new DeleteObjectCommand({ Bucket: bucket, Key }));
      return;
    }
    try {
      const res = await client.send(
        new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }),
      );
      const failed = (res.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (failed.length > 0) {
        throw new Error(
          `object storage kept ${failed.length} of ${batch.length} chunk objects it was asked to delete, e.g. ${failed[0].Key}: ${failed[0].Code} ${failed[0].Message ?? ''}`,
        );
      }
    } catch (err) {
      if ((err as { name?: string }).name !== 'NotImplemented') throw err;
      batchDelete = false;
      await removeObjects(batch);
    }
  }
  let batchDelete = true;

  return {
    name: 's3',
    location: `s3://${bucket}/${prefix}${settings.endpoint ? ` at ${settings.endpoint}` : ''}`,

    async write(key, seq, canonical, variant) {
      const chunk = await codec.encode(canonical, identity(key, seq));
      const objectKey = chunkObjectKey(prefix, key, seq, variant);
      const sent = await put(objectKey, chunk.body, PARQUET_CONTENT_TYPE);
      const what = `chunk ${seq} of ${key.message_kind}:${key.message_id} generation ${key.generation}`;
      const back = await get(objectKey, what);
      if (sha256Base64(back) !== sent) throw new ChunkIntegrityError(`${what} read back differs from what was written`);
      await codec.decode(back, { checksum: chunk.checksum, rowCount: chunk.rowCount, identity: identity(key, seq) }, true);
      return {
        checksum: chunk.checksum,
        rowCount: chunk.rowCount,
        firstId: chunk.firstId,
        lastId: chunk.lastId,
        bytes: chunk.body.length,
        codec: PARQUET_CODEC,
        payload: null,
        objectKey,
        userFilter: canonical.userFilter,
      };
    },

    record: (trx: Knex.Transaction, key: ChunkKey, seq: number, chunk: WrittenChunk) => insertChunkRecord(trx, key, seq, chunk, 's3'),

    // The object was written, read back and checked by `write`: only the catalog row changes here.
    replace: (trx: Knex.Transaction, key: ChunkKey, previous: ChunkRecord, chunk: WrittenChunk) =>
      replaceChunkRecord(trx, key, previous, chunk),

    async read(_db: Db, key: ChunkKey, record: ChunkRecord) {
      const rowCount = Number(record.row_count);
      const columns = await codec.decode(await chunkBytes(key, record), {
        checksum: record.checksum,
        rowCount,
        identity: identity(key, record.seq),
      });
      if (!columns) throw new Error('the codec sent no columns back');
      return { columns, rowCount };
    },

    async readUserRows(_db: Db, key: ChunkKey, record: ChunkRecord, userId: string) {
      const expected = { checksum: record.checksum, rowCount: Number(record.row_count), identity: identity(key, record.seq) };
      return codec.userRows(await chunkBytes(key, record), expected, userId);
    },

    async removeBodies(_key, records) {
      const keys = records.map((r) => r.object_key).filter((k): k is string => k !== null);
      for (let i = 0; i < keys.length; i += DELETE_BATCH) await removeObjects(keys.slice(i, i + DELETE_BATCH));
    },

    async describeGeneration(db: Db, key: ChunkKey, summary: GenerationSummary & { status: string }) {
      const chunks = await db('archive_chunks').where(key).whereNotNull('verified_at').orderBy('seq').select<
        {
          seq: number;
          object_key: string | null;
          row_count: number;
          first_id: string;
          last_id: string;
          checksum: string;
          bytes: string | number;
        }[]
      >('seq', 'object_key', 'row_count', 'first_id', 'last_id', 'checksum', 'bytes');
      const manifest = {
        format: PARQUET_CHUNK_FORMAT,
        message: { kind: key.message_kind, id: key.message_id },
        generation: key.generation,
        status: summary.status,
        rowCount: summary.rowCount,
        chunkCount: summary.chunkCount,
        bytes: summary.bytes,
        // sha256 over the chunks' rows_sha256 values joined by newlines, in seq order.
        checksum: summary.checksum,
        chunks: chunks.map((c) => ({
          seq: c.seq,
          key: c.object_key,
          rows: Number(c.row_count),
          firstId: String(c.first_id),
          lastId: String(c.last_id),
          rowsSha256: c.checksum,
          bytes: Number(c.bytes),
        })),
      };
      await put(manifestObjectKey(prefix, key), `${JSON.stringify(manifest, null, 2)}\n`, 'application/json');
    },

    async forgetGeneration(key) {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: manifestObjectKey(prefix, key) }));
    },
  };
}
