/**
 * The first admin token, so that a new installation can be used at all: `API_ADMIN_TOKEN` when set
 * (from a secret manager, in a container), or for `npm start` one made on first start and kept in a
 * file only its owner can read. Either is stored hashed like every other token.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Knex } from 'knex';
import { ApiTokenStore } from './apiTokens';

export type BootstrapToken = { source: 'env' } | { source: 'file'; file: string; created: boolean; token: string } | { source: 'none' };

/**
 * With `API_ADMIN_TOKEN`: keeps its hash. Otherwise, when `file` is given (npm start), reads the token
 * kept there or makes one and writes it there. Otherwise there is no bootstrap token.
 */
export async function ensureBootstrapToken(db: Knex, opts: { env?: NodeJS.ProcessEnv; file?: string } = {}): Promise<BootstrapToken> {
  const env = opts.env ?? process.env;
  const store = new ApiTokenStore(db);
  const fromEnv = env.API_ADMIN_TOKEN?.trim();
  if (fromEnv) {
    await store.putBootstrap(fromEnv, 'API_ADMIN_TOKEN');
    return { source: 'env' };
  }
  if (!opts.file) return { source: 'none' };
  let token: string | null = null;
  try {
    token = (await readFile(opts.file, 'utf8')).trim() || null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const created = token === null;
  if (token === null) {
    token = `idt_admin_${randomBytes(32).toString('base64url')}`;
    await mkdir(path.dirname(opts.file), { recursive: true });
    await writeFile(opts.file, `${token}\n`, { mode: 0o600 });
  }
  await chmod(opts.file, 0o600);
  await store.putBootstrap(token, path.basename(opts.file));
  return { source: 'file', file: opts.file, created, token };
}
