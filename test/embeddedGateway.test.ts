/**
 * The embedded S3 gateway that `npm start` and the tests use as the archive's object store: it serves
 * the S3 API over a directory, makes its bucket, keeps each object as a plain file, survives a crash
 * (kill, then restart on the same directory and port), and leaves no process behind when stopped.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { ensureVersityBinary } from '../scripts/ensureVersity';
import { createLogger } from '../src/logger';
import { embeddedGatewayClientConfig, embeddedGatewayEnv, startEmbeddedGateway, type EmbeddedGateway } from '../src/s3/embeddedGateway';

const log = createLogger('embedded-gateway-test', process.env.LOG_LEVEL || 'warn');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function statusOf(promise: Promise<unknown>): Promise<number | undefined> {
  try {
    await promise;
    return 200;
  } catch (err) {
    if (err instanceof S3ServiceException) return err.$metadata.httpStatusCode;
    throw err;
  }
}

describe('embedded S3 gateway', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'idt-s3-'));
  const dataDir = path.join(dir, 's3');
  let gw: EmbeddedGateway | null = null;
  let s3: S3Client;

  before(async () => {
    gw = await startEmbeddedGateway({
      binary: await ensureVersityBinary(),
      dataDir,
      accessKey: 'test-access-key',
      secretKey: 'test-secret-key-0123456789',
      bucket: 'interaction-data-test',
      log,
    });
    s3 = new S3Client(embeddedGatewayClientConfig(gw));
  });

  after(async () => {
    s3?.destroy();
    await gw?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the S3 API on loopback, with its bucket made', async () => {
    assert.ok(gw);
    assert.match(gw.endpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
    const { Buckets } = await s3.send(new ListBucketsCommand({}));
    assert.deepEqual(
      Buckets?.map((b) => b.Name),
      ['interaction-data-test'],
    );
    assert.deepEqual(embeddedGatewayEnv(gw), {
      ARCHIVE_STORE: 's3',
      S3_ENDPOINT: gw.endpoint,
      S3_REGION: 'us-east-1',
      S3_BUCKET: 'interaction-data-test',
      S3_FORCE_PATH_STYLE: 'true',
      AWS_ACCESS_KEY_ID: 'test-access-key',
      AWS_SECRET_ACCESS_KEY: 'test-secret-key-0123456789',
    });
  });

  it('refuses a client with the wrong secret', async () => {
    assert.ok(gw);
    const stranger = new S3Client({
      ...embeddedGatewayClientConfig(gw),
      credentials: { accessKeyId: gw.accessKey, secretAccessKey: 'not-the-secret' },
    });
    try {
      assert.equal(await statusOf(stranger.send(new ListBucketsCommand({}))), 403);
    } finally {
      stranger.destroy();
    }
  });

  it('puts, gets and deletes an object, kept as a plain file under the data directory', async () => {
    assert.ok(gw);
    const Bucket = gw.bucket;
    const Key = 'archive/one/object.bin';
    const body = Buffer.from('the bytes of one archived object\n');
    await s3.send(new PutObjectCommand({ Bucket, Key, Body: body }));

    const got = await s3.send(new GetObjectCommand({ Bucket, Key }));
    assert.deepEqual(Buffer.from(await got.Body!.transformToByteArray()), body);
    assert.equal(gw.objectPath(Key), path.join(dataDir, Bucket, 'archive', 'one', 'object.bin'));
    assert.deepEqual(readFileSync(gw.objectPath(Key)), body);

    await s3.send(new DeleteObjectCommand({ Bucket, Key }));
    assert.equal(await statusOf(s3.send(new HeadObjectCommand({ Bucket, Key }))), 404);
  });

  it('keeps its objects across a crash and a restart on the same port', async () => {
    assert.ok(gw);
    const Bucket = gw.bucket;
    const Key = 'archive/survivor';
    await s3.send(new PutObjectCommand({ Bucket, Key, Body: 'still here' }));
    const { endpoint, pid } = gw;

    await gw.kill();
    assert.equal(alive(pid), false, 'kill() resolves once the process is gone');
    await assert.rejects(s3.send(new GetObjectCommand({ Bucket, Key })), 'nothing answers while it is down');

    await gw.restart();
    assert.equal(gw.endpoint, endpoint);
    assert.notEqual(gw.pid, pid);
    const got = await s3.send(new GetObjectCommand({ Bucket, Key }));
    assert.equal(await got.Body!.transformToString(), 'still here');
  });

  it('leaves no process behind when stopped, and starts again on the same data', async () => {
    assert.ok(gw);
    const { pid } = gw;
    await gw.stop();
    assert.equal(alive(pid), false);

    await gw.restart();
    const got = await s3.send(new GetObjectCommand({ Bucket: gw.bucket, Key: 'archive/survivor' }));
    assert.equal(await got.Body!.transformToString(), 'still here');
    const second = gw.pid;
    await gw.stop();
    assert.equal(alive(second), false);
  });

  it('reports the last output of a gateway that exits during start-up', async () => {
    const fake = path.join(dir, 'broken-gateway');
    writeFileSync(fake, '#!/bin/sh\necho "starting"\necho "fatal: cannot use this directory" >&2\nexit 3\n');
    chmodSync(fake, 0o755);
    await assert.rejects(
      startEmbeddedGateway({ binary: fake, dataDir: path.join(dir, 'other'), accessKey: 'a', secretKey: 'b', bucket: 'whatever' }),
      (err: Error) => {
        assert.match(err.message, /exited during start-up \(exit code 3\)/);
        assert.match(err.message, /fatal: cannot use this directory/);
        return true;
      },
    );
  });
});
