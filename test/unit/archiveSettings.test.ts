import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { keySegment } from '../../src/archive/objectKeys';
import { archiveStoreSettings } from '../../src/config';
import { createLogger } from '../../src/logger';

describe('archive store settings', () => {
  it('chooses S3 when a bucket is named, MySQL otherwise, and what ARCHIVE_STORE says over both', () => {
    assert.equal(archiveStoreSettings({}).archiveStore, 'mysql');
    assert.equal(archiveStoreSettings({}).s3, null);
    const s3 = archiveStoreSettings({ S3_BUCKET: 'archive', S3_ENDPOINT: 'http://127.0.0.1:7070' });
    assert.equal(s3.archiveStore, 's3');
    assert.equal(s3.s3?.forcePathStyle, true, 'path style is the default with an endpoint of one own');
    assert.equal(s3.s3?.prefix, 'interaction-data');
    assert.equal(archiveStoreSettings({ S3_BUCKET: 'archive' }).s3?.forcePathStyle, false, 'AWS S3 itself: virtual-host style');
    assert.equal(archiveStoreSettings({ S3_BUCKET: 'archive', ARCHIVE_STORE: 'mysql' }).archiveStore, 'mysql');
    assert.equal(archiveStoreSettings({ S3_BUCKET: 'archive', S3_PREFIX: '/a/b/' }).s3?.prefix, 'a/b');
    assert.equal(archiveStoreSettings({ S3_BUCKET: 'archive', S3_REGION: 'eu-west-1' }).s3?.region, 'eu-west-1');
  });

  it('takes credentials from the environment it was given, and leaves them to the SDK chain otherwise', () => {
    assert.deepEqual(archiveStoreSettings({ S3_BUCKET: 'b', AWS_ACCESS_KEY_ID: 'id', AWS_SECRET_ACCESS_KEY: 'secret' }).s3?.credentials, {
      accessKeyId: 'id',
      secretAccessKey: 'secret',
    });
    assert.equal(archiveStoreSettings({ S3_BUCKET: 'b', AWS_ACCESS_KEY_ID: 'id' }).s3?.credentials, null);
  });

  it('refuses what cannot work, naming the variable', () => {
    assert.throws(() => archiveStoreSettings({ ARCHIVE_STORE: 's3' }), /ARCHIVE_STORE=s3 needs S3_BUCKET/);
    assert.throws(() => archiveStoreSettings({ ARCHIVE_STORE: 'glacier' }), /ARCHIVE_STORE must be s3 or mysql/);
    assert.throws(
      () => archiveStoreSettings({ S3_BUCKET: 'b', S3_STORAGE_CLASS: 'GLACIER' }),
      /S3_STORAGE_CLASS must be one of .*restore request/,
    );
    assert.throws(() => archiveStoreSettings({ S3_BUCKET: 'b', S3_STORAGE_CLASS: 'deep_archive' }), /S3_STORAGE_CLASS/);
    assert.equal(archiveStoreSettings({ S3_BUCKET: 'b', S3_STORAGE_CLASS: 'glacier_ir' }).s3?.storageClass, 'GLACIER_IR');
    assert.throws(() => archiveStoreSettings({ S3_BUCKET: 'b', S3_ENDPOINT: 'gateway:7070' }), /S3_ENDPOINT must be an http/);
    assert.throws(() => archiveStoreSettings({ S3_BUCKET: 'b', S3_FORCE_PATH_STYLE: 'yes' }), /S3_FORCE_PATH_STYLE must be true or false/);
    assert.throws(() => archiveStoreSettings({ S3_BUCKET: 'b', S3_MAX_ATTEMPTS: '0' }), /S3_MAX_ATTEMPTS/);
  });
});

describe('object keys', () => {
  it('keep an id readable, never a path step, and bounded', () => {
    assert.equal(keySegment('spring-sale_2.0'), 'spring-sale_2.0');
    assert.equal(keySegment('a/b c'), 'a%2Fb%20c');
    assert.equal(keySegment('.'), '%2E');
    assert.equal(keySegment('..'), '%2E%2E');
    const long = keySegment('ü'.repeat(64));
    assert.match(long, /^sha256-[0-9a-f]{64}$/);
    assert.notEqual(long, keySegment(`${'ü'.repeat(63)}u`));
  });
});

describe('logs', () => {
  it('redact the AWS secret key and session token, by key and in text', async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const env = { AWS_SECRET_ACCESS_KEY: 'aws-secret-0123456789', AWS_SESSION_TOKEN: 'aws-session-token-0123456789' };
    const log = createLogger('test', 'info', { destination, env });
    log.info(
      {
        s3: { credentials: { accessKeyId: 'AKIA', secretAccessKey: env.AWS_SECRET_ACCESS_KEY } },
        AWS_SESSION_TOKEN: env.AWS_SESSION_TOKEN,
      },
      'x',
    );
    log.warn(`signing with ${env.AWS_SECRET_ACCESS_KEY} failed`);
    await new Promise((r) => setImmediate(r));
    const text = lines.join('');
    assert.ok(!text.includes(env.AWS_SECRET_ACCESS_KEY), text);
    assert.ok(!text.includes(env.AWS_SESSION_TOKEN), text);
  });
});
