/** The embedded S3 gateway a benchmark archives to: Versity Gateway over a fresh temporary directory on this machine. */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureVersityBinary } from '../../scripts/ensureVersity';
import { startEmbeddedGateway, type EmbeddedGateway } from '../../src/s3/embeddedGateway';

export async function startBenchGateway(): Promise<EmbeddedGateway> {
  return startEmbeddedGateway({
    binary: await ensureVersityBinary(),
    dataDir: mkdtempSync(path.join(os.tmpdir(), 'bench-s3-')),
    accessKey: 'bench-access-key',
    secretKey: 'bench-secret-key',
    bucket: 'interaction-data-bench',
  });
}
