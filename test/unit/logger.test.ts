import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger, secretScrubber, type Logger } from '../../src/logger';

const ENV = {
  TEMPORAL_API_KEY: 'tmprl-api-key-0123456789',
  RESEND_API_KEY: 're_resend_key_abcdef',
  API_ADMIN_TOKEN: 'admin-token-0123456789abcdef0123456789',
  MYSQL_URL: 'mysql://app:db-password-42@db.internal:3306/interaction_data',
};
const SECRETS = [
  ENV.TEMPORAL_API_KEY,
  ENV.RESEND_API_KEY,
  ENV.API_ADMIN_TOKEN,
  'db-password-42',
  'hunter2-hunter2',
  'eyJhbGciOiJIUzI1NiJ9.payload.sig',
  'q-token-123',
];

/** A logger writing JSON lines into an array, with the service's options. */
function capture(): { log: Logger; lines: () => string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return { log: createLogger('test', 'info', { destination: stream, env: ENV }), lines: () => lines };
}

const flushed = () => new Promise((r) => setImmediate(r));

describe('logs redact secrets', () => {
  it('by key: headers, passwords, API keys, tokens, the secret variables', async () => {
    const { log, lines } = capture();
    log.info(
      {
        req: {
          method: 'GET',
          url: '/v1/messages',
          headers: { authorization: 'Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig', 'user-agent': 'curl' },
        },
        headers: { Authorization: 'Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig' },
        db: { user: 'app', password: 'hunter2-hunter2' },
        temporal: { apiKey: ENV.TEMPORAL_API_KEY, address: 'ns.acct.tmprl.cloud:7233' },
        token: 'q-token-123',
        env: { TEMPORAL_API_KEY: ENV.TEMPORAL_API_KEY, RESEND_API_KEY: ENV.RESEND_API_KEY, API_ADMIN_TOKEN: ENV.API_ADMIN_TOKEN },
      },
      'request',
    );
    await flushed();
    const [line] = lines();
    for (const s of SECRETS) assert.ok(!line.includes(s), `${s} in ${line}`);
    const entry = JSON.parse(line) as Record<string, Record<string, unknown>>;
    assert.equal((entry.req.headers as Record<string, string>).authorization, '[redacted]');
    assert.equal((entry.req.headers as Record<string, string>)['user-agent'], 'curl');
    assert.equal(entry.db.password, '[redacted]');
    assert.equal(entry.db.user, 'app');
    assert.equal(entry.temporal.address, 'ns.acct.tmprl.cloud:7233');
    assert.equal(entry.env.RESEND_API_KEY, '[redacted]');
  });

  it('in strings: URL passwords, bearer credentials, token parameters, secret values, in messages and errors', async () => {
    const { log, lines } = capture();
    log.info(
      { url: ENV.MYSQL_URL, nested: { deeper: { again: [`retrying with key ${ENV.TEMPORAL_API_KEY}`] } } },
      'opening %s',
      ENV.MYSQL_URL,
    );
    log.warn(`called /v1/x?token=q-token-123&limit=5 with Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig`);
    const err = new Error(`connect to mysql://app:db-password-42@db.internal:3306 failed`);
    log.error(err);
    log.error(
      { err: Object.assign(new Error('resend refused'), { apiKey: ENV.RESEND_API_KEY, detail: `key ${ENV.RESEND_API_KEY}` }) },
      'e-mail failed',
    );
    log.child({ target: 'mysql://app:db-password-42@db.internal:3306/x' }).info('child');
    await flushed();
    const out = lines();
    assert.equal(out.length, 5);
    for (const line of out) for (const s of SECRETS) assert.ok(!line.includes(s), `${s} in ${line}`);
    const [first, second, third, fourth, fifth] = out.map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(first.url, 'mysql://app:[redacted]@db.internal:3306/interaction_data');
    assert.equal(first.msg, 'opening mysql://app:[redacted]@db.internal:3306/interaction_data');
    assert.match(String(second.msg), /token=\[redacted\]&limit=5 .*Bearer \[redacted\]/);
    const e3 = third.err as Record<string, string>;
    assert.equal(e3.type, 'Error');
    assert.equal(e3.message, 'connect to mysql://app:[redacted]@db.internal:3306 failed');
    assert.match(e3.stack, /^Error: connect to mysql:\/\/app:\[redacted\]@/);
    assert.equal(third.msg, e3.message);
    const e4 = fourth.err as Record<string, string>;
    assert.equal(e4.type, 'Error');
    assert.equal(e4.apiKey, '[redacted]');
    assert.equal(e4.detail, 'key [redacted]');
    assert.equal(fifth.target, 'mysql://app:[redacted]@db.internal:3306/x');
    // The caller's error is left as it was.
    assert.match(err.message, /db-password-42/);
  });

  it('leaves ordinary text alone', () => {
    const scrub = secretScrubber({});
    for (const s of [
      'archived 5000 rows of campaign:123',
      'http://localhost:3000/healthz',
      'mysql://root@127.0.0.1:3306/interaction_data',
      'Bearer',
    ]) {
      assert.equal(scrub(s), s);
    }
  });
});
