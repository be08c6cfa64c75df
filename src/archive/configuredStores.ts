/**
 * The archive stores a process has from its configuration: the S3 store whenever S3_* name a bucket
 * (so chunks already there stay readable even when ARCHIVE_STORE=mysql), and the MySQL store always
 * (every generation archived before object storage is there).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { DEFAULT_ARCHIVE_CHUNK_ROWS, type Config } from '../config';
import { mysqlStore } from './mysqlStore';
import { parquetCodec } from './parquetCodec';
import { createS3Client } from './s3Client';
import { s3Store } from './s3Store';
import { archiveStores, type ArchiveStores } from './store';

export interface ConfiguredStores {
  stores: ArchiveStores;
  /** Null when no S3 is configured. */
  s3Client: S3Client | null;
  close(): Promise<void>;
}

export function configuredStores(
  config: Pick<Config, 'archiveStore' | 's3'> & { archiveCodecThreads?: number; archiveChunkRows?: number },
): ConfiguredStores {
  const mysql = mysqlStore();
  if (!config.s3) return { stores: archiveStores(mysql), s3Client: null, close: () => Promise.resolve() };
  const client = createS3Client(config.s3);
  const codec = parquetCodec(config.archiveCodecThreads ?? 0, config.archiveChunkRows ?? DEFAULT_ARCHIVE_CHUNK_ROWS);
  const s3 = s3Store({ client, settings: config.s3, codec });
  const stores = config.archiveStore === 's3' ? archiveStores(s3, [mysql]) : archiveStores(mysql, [s3]);
  return {
    stores,
    s3Client: client,
    async close() {
      client.destroy();
      await codec.close();
    },
  };
}
