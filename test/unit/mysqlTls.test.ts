import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createDb, migrateOnStart } from '../../src/db/knex';
import { describeMysqlTls, mysqlTlsFromEnv } from '../../src/db/mysqlTls';

const files: Record<string, string> = {
  '/etc/db/ca.pem': '-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n',
  '/etc/db/client.pem': '-----BEGIN CERTIFICATE-----\nCLIENT\n-----END CERTIFICATE-----\n',
  '/etc/db/client.key': '-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n',
  '/etc/db/ca.der': '0\x82\x03',
};
const readFile = (p: string): string => {
  const text = files[p];
  if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${p}'`), { code: 'ENOENT' });
  return text;
};
const tlsOf = (env: NodeJS.ProcessEnv) => mysqlTlsFromEnv(env, readFile);

describe('MySQL TLS options from the environment', () => {
  it('is plaintext when nothing is set, or set empty', () => {
    assert.equal(tlsOf({}), undefined);
    assert.equal(tlsOf({ MYSQL_SSL: '', MYSQL_SSL_CA: '', MYSQL_SSL_REJECT_UNAUTHORIZED: '' }), undefined);
    assert.equal(tlsOf({ MYSQL_SSL: 'off' }), undefined);
    assert.equal(describeMysqlTls(undefined), 'plaintext');
  });

  it('MYSQL_SSL=required verifies the certificate and host name against the system CAs', () => {
    assert.deepEqual(tlsOf({ MYSQL_SSL: 'required' }), { rejectUnauthorized: true, verifyIdentity: true });
    assert.deepEqual(tlsOf({ MYSQL_SSL: 'REQUIRED' }), { rejectUnauthorized: true, verifyIdentity: true });
    assert.equal(describeMysqlTls(tlsOf({ MYSQL_SSL: 'required' })), 'TLS, verified');
  });

  it('a CA, client certificate and key turn TLS on and are read from their files', () => {
    const tls = tlsOf({ MYSQL_SSL_CA: '/etc/db/ca.pem', MYSQL_SSL_CERT: '/etc/db/client.pem', MYSQL_SSL_KEY: '/etc/db/client.key' });
    assert.deepEqual(tls, {
      rejectUnauthorized: true,
      verifyIdentity: true,
      ca: files['/etc/db/ca.pem'],
      cert: files['/etc/db/client.pem'],
      key: files['/etc/db/client.key'],
    });
    assert.equal(describeMysqlTls(tls), 'TLS, verified, own CA, client certificate');
  });

  it('MYSQL_SSL_REJECT_UNAUTHORIZED=false encrypts without verifying', () => {
    assert.deepEqual(tlsOf({ MYSQL_SSL: 'required', MYSQL_SSL_REJECT_UNAUTHORIZED: 'false' }), {
      rejectUnauthorized: false,
      verifyIdentity: false,
    });
    assert.deepEqual(tlsOf({ MYSQL_SSL_CA: '/etc/db/ca.pem', MYSQL_SSL_REJECT_UNAUTHORIZED: '0' })?.rejectUnauthorized, false);
    assert.deepEqual(tlsOf({ MYSQL_SSL: 'required', MYSQL_SSL_REJECT_UNAUTHORIZED: 'true' })?.rejectUnauthorized, true);
  });

  it('refuses bad values, naming the variable', () => {
    const cases: [NodeJS.ProcessEnv, RegExp][] = [
      [{ MYSQL_SSL: 'yes' }, /^Error: MYSQL_SSL must be "required" or "off", got "yes"/],
      [
        { MYSQL_SSL: 'required', MYSQL_SSL_REJECT_UNAUTHORIZED: 'no' },
        /^Error: MYSQL_SSL_REJECT_UNAUTHORIZED must be true or false, got "no"/,
      ],
      [{ MYSQL_SSL_REJECT_UNAUTHORIZED: 'false' }, /^Error: MYSQL_SSL_REJECT_UNAUTHORIZED is set but TLS is off/],
      [{ MYSQL_SSL: 'off', MYSQL_SSL_CA: '/etc/db/ca.pem' }, /^Error: MYSQL_SSL=off contradicts MYSQL_SSL_CA/],
      [{ MYSQL_SSL_CERT: '/etc/db/client.pem' }, /^Error: MYSQL_SSL_CERT and MYSQL_SSL_KEY must be set together/],
      [{ MYSQL_SSL_KEY: '/etc/db/client.key' }, /^Error: MYSQL_SSL_CERT and MYSQL_SSL_KEY must be set together/],
      [{ MYSQL_SSL_CA: '/etc/db/missing.pem' }, /^Error: MYSQL_SSL_CA: cannot read \/etc\/db\/missing\.pem: ENOENT/],
      [{ MYSQL_SSL_CA: '/etc/db/ca.der' }, /^Error: MYSQL_SSL_CA: \/etc\/db\/ca\.der is not a PEM file/],
    ];
    for (const [env, message] of cases) assert.throws(() => tlsOf(env), message, JSON.stringify(env));
  });

  it('reaches the mysql2 connection of createDb, and null means plaintext', async () => {
    const tls = tlsOf({ MYSQL_SSL_CA: '/etc/db/ca.pem' });
    const db = createDb('mysql://app:pw@db.internal:3306/interaction_data', { min: 0, max: 1 }, { tls });
    const plain = createDb('mysql://app:pw@db.internal:3306/interaction_data', { min: 0, max: 1 }, { tls: null });
    try {
      // knex keeps the connection settings it hands mysql2 here; no connection is opened.
      const settings = (d: typeof db) => (d.client as { connectionSettings: Record<string, unknown> }).connectionSettings;
      assert.deepEqual(settings(db).ssl, tls);
      assert.equal('ssl' in settings(plain), false);
    } finally {
      await db.destroy();
      await plain.destroy();
    }
  });
});

describe('MIGRATE_ON_START', () => {
  it('defaults to true and reads true or false', () => {
    assert.equal(migrateOnStart({}), true);
    assert.equal(migrateOnStart({ MIGRATE_ON_START: '' }), true);
    assert.equal(migrateOnStart({ MIGRATE_ON_START: 'true' }), true);
    assert.equal(migrateOnStart({ MIGRATE_ON_START: 'false' }), false);
    assert.equal(migrateOnStart({ MIGRATE_ON_START: '0' }), false);
    assert.throws(() => migrateOnStart({ MIGRATE_ON_START: 'never' }), /^Error: MIGRATE_ON_START must be true or false, got "never"/);
  });
});
