/**
 * The S3 client of the object store, from S3_* settings: credentials come from the AWS SDK's usual
 * chain (environment, shared config, web identity, container or instance role), requests are retried
 * by the SDK's standard strategy (throttling such as 503 SlowDown, 5xx, timeouts and refused
 * connections, with exponential backoff and jitter) and each is bounded in time, so a gateway that
 * stops answering fails the attempt instead of hanging it.
 */
import { HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { S3Settings } from '../config';

export function createS3Client(s3: S3Settings): S3Client {
  return new S3Client({
    region: s3.region,
    ...(s3.endpoint ? { endpoint: s3.endpoint } : {}),
    forcePathStyle: s3.forcePathStyle,
    ...(s3.credentials ? { credentials: s3.credentials } : {}),
    maxAttempts: s3.maxAttempts,
    // The service sends its own SHA-256 with every chunk and checks every read against it; the SDK's
    // automatic CRC32 on top is not understood by every S3-compatible server.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: new NodeHttpHandler({
      connectionTimeout: Math.min(s3.requestTimeoutMs, 10_000),
      requestTimeout: s3.requestTimeoutMs,
      // Without it the handler only logs a request past its timeout and goes on waiting for the answer.
      throwOnRequestTimeout: true,
    }),
  });
}

/** What HeadBucket's refusal means to whoever configured the service. */
const REFUSALS: Record<string, string> = {
  NotFound: 'does not exist',
  NoSuchBucket: 'does not exist',
  Forbidden: 'refuses these credentials',
  AccessDenied: 'refuses these credentials',
  InvalidAccessKeyId: 'does not know this access key',
  SignatureDoesNotMatch: 'rejects this secret key',
};

/**
 * At start: the bucket exists and these credentials may use it. A wrong bucket or key would otherwise
 * only show as every archive's attempts failing; a network error is left to the archives' retries.
 */
export async function checkBucket(client: S3Client, bucket: string): Promise<{ ok: true } | { ok: false; transient: string }> {
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket }));
    return { ok: true };
  } catch (err) {
    const name = (err as { name?: string }).name ?? '';
    const refusal = REFUSALS[name];
    if (refusal)
      throw new Error(`the archive's bucket ${bucket} ${refusal} (${name}): check S3_BUCKET, S3_ENDPOINT and the credentials`, {
        cause: err,
      });
    return { ok: false, transient: (err as Error).message };
  }
}
