import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TLSConfig } from '@temporalio/client';
import { loadConfig } from '../../src/config';
import { temporalConnectionOptions } from '../../src/temporal/connection';
import { describeTransport, temporalSettingsFromEnv } from '../../src/temporal/envSettings';

// No HOME or XDG_CONFIG_HOME in these environments: the developer's own temporal.toml stays out of them.
describe('Temporal connection settings from the environment', () => {
  let dir: string;
  const file = (name: string, text: string): string => {
    const p = path.join(dir, name);
    writeFileSync(p, text);
    return p;
  };

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'temporal-settings-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('defaults to a local plaintext server and namespace default', () => {
    const s = temporalSettingsFromEnv({});
    assert.deepEqual(s, { address: 'localhost:7233', namespace: 'default', transport: {} });
    assert.equal(describeTransport(s.transport), 'plaintext');
  });

  it('keeps TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE, and reads an empty one as unset', () => {
    assert.deepEqual(temporalSettingsFromEnv({ TEMPORAL_ADDRESS: 'temporal:7233', TEMPORAL_NAMESPACE: 'prod' }), {
      address: 'temporal:7233',
      namespace: 'prod',
      transport: {},
    });
    // docker compose passes `${TEMPORAL_API_KEY:-}` as an empty string when it is not set.
    assert.deepEqual(temporalSettingsFromEnv({ TEMPORAL_ADDRESS: '', TEMPORAL_API_KEY: '', TEMPORAL_TLS: '' }), {
      address: 'localhost:7233',
      namespace: 'default',
      transport: {},
    });
  });

  it('turns TLS on with an API key, as Temporal Cloud needs, unless TEMPORAL_TLS=false', () => {
    const cloud = temporalSettingsFromEnv({
      TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233',
      TEMPORAL_NAMESPACE: 'ns.acct',
      TEMPORAL_API_KEY: 'secret-key',
    });
    assert.deepEqual(cloud.transport, { tls: true, apiKey: 'secret-key' });
    assert.equal(describeTransport(cloud.transport), 'TLS + API key');
    const plain = temporalSettingsFromEnv({ TEMPORAL_API_KEY: 'k', TEMPORAL_TLS: 'false' });
    assert.deepEqual(plain.transport, { tls: false, apiKey: 'k' });
    const systemCas = temporalSettingsFromEnv({ TEMPORAL_TLS: 'true' }).transport;
    assert.equal(describeTransport(systemCas), 'TLS');
    assert.equal(systemCas.apiKey, undefined);
  });

  it('reads mTLS files and the server name', () => {
    const cert = file('client.pem', 'CERT');
    const key = file('client.key', 'KEY');
    const ca = file('ca.pem', 'CA');
    const s = temporalSettingsFromEnv({
      TEMPORAL_TLS_CLIENT_CERT_PATH: cert,
      TEMPORAL_TLS_CLIENT_KEY_PATH: key,
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: ca,
      TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
    });
    const tls = s.transport.tls as TLSConfig;
    assert.equal(tls.serverNameOverride, 'temporal.internal');
    assert.equal(Buffer.from(tls.serverRootCACertificate!).toString(), 'CA');
    assert.equal(Buffer.from(tls.clientCertPair!.crt).toString(), 'CERT');
    assert.equal(Buffer.from(tls.clientCertPair!.key).toString(), 'KEY');
    assert.equal(describeTransport(s.transport), 'mTLS');
  });

  it('names the variable that is wrong', () => {
    const cert = file('only-cert.pem', 'CERT');
    assert.throws(
      () => temporalSettingsFromEnv({ TEMPORAL_TLS_CLIENT_CERT_PATH: cert }),
      /TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH .* together/,
    );
    assert.throws(
      () => temporalSettingsFromEnv({ TEMPORAL_TLS_SERVER_CA_CERT_PATH: path.join(dir, 'missing.pem') }),
      /^Error: TEMPORAL_TLS_SERVER_CA_CERT_PATH: ENOENT/,
    );
    assert.throws(() => temporalSettingsFromEnv({ TEMPORAL_TLS: 'yes' }), /TEMPORAL_TLS must be true or false, got "yes"/);
    assert.throws(
      () => temporalSettingsFromEnv({ TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: 'true' }),
      /TEMPORAL_TLS_DISABLE_HOST_VERIFICATION is not supported/,
    );
    assert.throws(
      () => temporalSettingsFromEnv({ TEMPORAL_CONFIG_FILE: path.join(dir, 'nope.toml') }),
      /TEMPORAL_CONFIG_FILE names .*nope\.toml, which does not exist/,
    );
  });

  it('takes a profile of the Temporal config file, which variables override', () => {
    const toml = file(
      'temporal.toml',
      [
        '[profile.default]',
        'address = "file-default:7233"',
        '[profile.cloud]',
        'address = "ns.acct.tmprl.cloud:7233"',
        'namespace = "ns.acct"',
        'api_key = "from-file"',
        '[profile.cloud.grpc_meta]',
        'x-team = "data"',
      ].join('\n'),
    );
    assert.equal(temporalSettingsFromEnv({ TEMPORAL_CONFIG_FILE: toml }).address, 'file-default:7233');
    const cloud = temporalSettingsFromEnv({ TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'cloud' });
    assert.deepEqual(cloud, {
      address: 'ns.acct.tmprl.cloud:7233',
      namespace: 'ns.acct',
      transport: { tls: true, apiKey: 'from-file', metadata: { 'x-team': 'data' } },
    });
    const overridden = temporalSettingsFromEnv({
      TEMPORAL_CONFIG_FILE: toml,
      TEMPORAL_PROFILE: 'cloud',
      TEMPORAL_NAMESPACE: 'other.acct',
      TEMPORAL_API_KEY: 'from-env',
    });
    assert.equal(overridden.namespace, 'other.acct');
    assert.equal(overridden.transport.apiKey, 'from-env');
    assert.throws(
      () => temporalSettingsFromEnv({ TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'staging' }),
      /TEMPORAL_PROFILE staging.*Profile 'staging' not found/,
    );
  });

  it('reads temporal.toml where the Temporal CLI keeps it only when TEMPORAL_PROFILE asks', () => {
    const home = path.join(dir, 'home');
    mkdirSync(path.join(home, '.config', 'temporalio'), { recursive: true });
    writeFileSync(
      path.join(home, '.config', 'temporalio', 'temporal.toml'),
      '[profile.default]\nnamespace = "from-cli-config"\n[profile.cloud]\naddress = "ns.acct.tmprl.cloud:7233"\napi_key = "k"\n',
    );
    // A developer's CLI profile must not point npm start or the tests elsewhere by itself.
    assert.deepEqual(temporalSettingsFromEnv({ HOME: home }), { address: 'localhost:7233', namespace: 'default', transport: {} });
    assert.equal(temporalSettingsFromEnv({ HOME: home, TEMPORAL_PROFILE: 'default' }).namespace, 'from-cli-config');
    assert.deepEqual(temporalSettingsFromEnv({ HOME: home, TEMPORAL_PROFILE: 'cloud' }).transport, { tls: true, apiKey: 'k' });
  });

  it('sends TEMPORAL_GRPC_META_* as gRPC headers', () => {
    assert.deepEqual(temporalSettingsFromEnv({ TEMPORAL_GRPC_META_X_TENANT: 'acme' }).transport, { metadata: { 'x-tenant': 'acme' } });
  });

  it('loadConfig carries the settings, and every connection is made with them', () => {
    const config = loadConfig({ TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233', TEMPORAL_NAMESPACE: 'ns.acct', TEMPORAL_API_KEY: 'k' });
    assert.equal(config.temporalAddress, 'ns.acct.tmprl.cloud:7233');
    assert.equal(config.temporalNamespace, 'ns.acct');
    assert.deepEqual(temporalConnectionOptions(config), { address: 'ns.acct.tmprl.cloud:7233', tls: true, apiKey: 'k' });
    // The CLI hands over an address (perhaps its --address) and namespace only.
    assert.deepEqual(temporalConnectionOptions({ ...config, temporalAddress: 'elsewhere:7233' }), {
      address: 'elsewhere:7233',
      tls: true,
      apiKey: 'k',
    });
  });
  it('reads the brake settings: move slots, the nice ratio, the load limit and the pause recheck, refusing bad values', () => {
    const config = loadConfig({
      WORKER_MOVE_SLOTS: '3',
      MOVE_NICE_RATIO: '0.25',
      MOVE_MAX_THREADS_RUNNING: '0',
      ARCHIVING_PAUSE_RECHECK: '2 minutes',
    });
    assert.equal(config.worker.moveSlots, 3);
    assert.deepEqual([config.worker.movesPerSecond, config.worker.workerMovesPerSecond], [null, null], 'no pace unless set');
    const paced = loadConfig({ MOVES_PER_SECOND: '4', WORKER_MOVES_PER_SECOND: '0.5' });
    assert.deepEqual([paced.worker.movesPerSecond, paced.worker.workerMovesPerSecond], [4, 0.5]);
    assert.throws(() => loadConfig({ WORKER_MOVES_PER_SECOND: 'fast' }), /WORKER_MOVES_PER_SECOND/);
    assert.deepEqual(config.moveThrottle, { maxThreadsRunning: 0, niceRatio: 0.25, maxBackoffMs: 5_000 });
    assert.equal(config.archivingPauseRecheck.milliseconds, 120_000);
    assert.throws(() => loadConfig({ MOVE_NICE_RATIO: '-1' }), /MOVE_NICE_RATIO must be a number from 0 to 100/);
    assert.throws(() => loadConfig({ WORKER_MOVE_SLOTS: '0' }), /WORKER_MOVE_SLOTS must be a positive integer/);
    assert.throws(() => loadConfig({ ARCHIVING_PAUSE_RECHECK: '1 month' }), /ARCHIVING_PAUSE_RECHECK must be at most 1 day/);
  });
});
