/**
 * `npm start` as a new user meets it: the stack comes up with nothing set, prints an admin token's
 * place and a curl line, and that very line, run in a shell, gets an answer; without the token the API
 * refuses; the API listens on loopback only; a stopped message is archived into the embedded S3
 * gateway, as Parquet objects under the data directory. (Its state goes to a temporary DATA_DIR, not
 * .data/, and a short TTL stands in for three months.)
 */
import assert from 'node:assert/strict';
import { spawn, execSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { createDb } from '../src/db/knex';
import { freePort } from '../src/temporal/devServer';
import { REPO_ROOT, uniqueName, withDatabase } from './support/stack';

const BASE_MYSQL = process.env.TEST_MYSQL_URL || process.env.MYSQL_URL || 'mysql://root@127.0.0.1:3306/interaction_data';

/** A port p with p + 1000 free too (the dev server's Web UI). */
async function portPair(): Promise<number> {
  for (;;) {
    const p = await freePort();
    if (p + 1000 > 65535) continue;
    const probe = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(p + 1000, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (probe) return p;
  }
}

describe('npm start, then the printed curl line', () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'idt-start-'));
  const database = uniqueName('idstart');
  let child: ChildProcess | null = null;

  after(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGINT');
      await new Promise((r) => child?.once('exit', r));
    }
    const db = createDb(BASE_MYSQL);
    await db.raw('DROP DATABASE IF EXISTS ??', [database]).catch(() => undefined);
    await db.destroy();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('works with nothing set but where to put things', { timeout: 240_000 }, async () => {
    const temporalPort = await portPair();
    const apiPort = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DATA_DIR: dataDir,
      TEMPORAL_ADDRESS: `localhost:${temporalPort}`,
      PORT: String(apiPort),
      S3_PORT: String(await freePort()),
      MYSQL_URL: withDatabase(BASE_MYSQL, database),
      INTERACTION_DATA_TTL: '1 second',
      LOG_LEVEL: 'warn',
    };
    delete env.HOST;
    delete env.API_ADMIN_TOKEN;
    for (const name of [
      'ARCHIVE_STORE',
      'S3_ENDPOINT',
      'S3_BUCKET',
      'S3_PREFIX',
      'AWS_ACCESS_KEY_ID',
      'AWS_SECRET_ACCESS_KEY',
      'AWS_PROFILE',
    ])
      delete env[name];
    child = spawn(process.execPath, ['--import', 'tsx', 'src/devStack.ts'], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout?.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr?.on('data', (c: Buffer) => (err += c.toString('utf8')));
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (/Ctrl-C stops everything/.test(out)) {
          clearInterval(timer);
          resolve();
        } else if (child?.exitCode !== null) {
          clearInterval(timer);
          reject(new Error(`npm start ended early:\n${out}\n${err}`));
        }
      }, 200);
    });

    assert.match(out, new RegExp(`HTTP API\\s+http://127\\.0\\.0\\.1:${apiPort}`), 'listens on loopback by default');
    const line = /Admin token\s+(\S+) \(made now\): (curl .*)$/m.exec(out);
    assert.ok(line, out);
    const tokenFile = path.resolve(REPO_ROOT, line[1]);
    assert.equal(tokenFile, path.join(dataDir, 'api-admin-token'));
    assert.equal(statSync(tokenFile).mode & 0o777, 0o600);

    const answer = JSON.parse(execSync(line[2], { cwd: REPO_ROOT, shell: '/bin/sh', encoding: 'utf8' })) as Record<string, unknown>;
    assert.deepEqual(answer, { items: [], count: 0, limit: 100, truncated: false });
    const refused = JSON.parse(execSync(`curl -s http://127.0.0.1:${apiPort}/v1/messages`, { encoding: 'utf8' })) as Record<
      string,
      unknown
    >;
    assert.equal(refused.error, 'unauthorized');
    const health = JSON.parse(execSync(`curl -s http://127.0.0.1:${apiPort}/healthz`, { encoding: 'utf8' })) as Record<string, unknown>;
    assert.equal(health.ok, true);
    assert.match(out, /S3 archive\s+http:\/\/127\.0\.0\.1:\d+ bucket interaction-data, data in /);

    // A message with a few interactions, stopped: with the short TTL it is archived into the embedded gateway.
    const token = readFileSync(tokenFile, 'utf8').trim();
    const api = async (method: string, route: string, body?: unknown) => {
      const res = await fetch(`http://127.0.0.1:${apiPort}${route}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      assert.ok(res.status < 300, `${method} ${route}: ${res.status} ${await res.clone().text()}`);
      return (await res.json()) as Record<string, unknown>;
    };
    await api('POST', '/v1/messages', {
      kind: 'campaign',
      id: 'first-archive',
      name: 'First archive',
      variants: [{ id: 'v1', name: 'Only' }],
    });
    const events = Array.from({ length: 25 }, (_, i) => ({
      eventId: `first-archive-${i}`,
      type: 'received',
      messageKind: 'campaign',
      messageId: 'first-archive',
      userId: `user-${i}`,
      occurredAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
      variantId: 'v1',
      channel: 'email',
    }));
    assert.equal((await api('POST', '/v1/interactions', { events })).stored, 25);
    await api('POST', '/v1/messages/campaign/first-archive/stop', {});
    const deadline = Date.now() + 60_000;
    let status: Record<string, unknown> = {};
    while (Date.now() < deadline) {
      status = await api('GET', '/v1/messages/campaign/first-archive');
      if (status.state === 'expired') break;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(status.state, 'expired', JSON.stringify(status));
    const object = path.join(dataDir, 's3', 'interaction-data', 'interaction-data', 'campaign', 'first-archive', 'gen-1', '000001.parquet');
    assert.ok(existsSync(object), `${object} holds the archived rows`);
    assert.ok(existsSync(path.join(path.dirname(object), 'manifest.json')));

    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child?.once('exit', (c) => r(c)));
    assert.equal(code, 0, err);
  });
});
