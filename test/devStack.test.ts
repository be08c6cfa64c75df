/**
 * `npm start` as a new user meets it: the stack comes up with nothing set, prints an admin token's
 * place and a curl line, and that very line, run in a shell, gets an answer; without the token the API
 * refuses; the API listens on loopback only. (Its state goes to a temporary DATA_DIR, not .data/.)
 */
import assert from 'node:assert/strict';
import { spawn, execSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
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
      MYSQL_URL: withDatabase(BASE_MYSQL, database),
      LOG_LEVEL: 'warn',
    };
    delete env.HOST;
    delete env.API_ADMIN_TOKEN;
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

    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child?.once('exit', (c) => r(c)));
    assert.equal(code, 0, err);
  });
});
