/**
 * TLS for every MySQL connection the service opens, from the environment:
 *
 * - `MYSQL_SSL_CA`, `MYSQL_SSL_CERT`, `MYSQL_SSL_KEY`: PEM files (the server's CA; a client certificate
 *   and its key, which go together). Any of them turns TLS on.
 * - `MYSQL_SSL=required`: TLS even without files, trusting the system's CAs (managed MySQL services
 *   with a publicly signed certificate). `MYSQL_SSL=off`, or nothing set, is plaintext.
 * - `MYSQL_SSL_REJECT_UNAUTHORIZED` (default true): verify the server's certificate chain and that it
 *   names the host in MYSQL_URL. false encrypts without knowing whom to: for tests only.
 */
import { readFileSync } from 'node:fs';
import type { SslOptions } from 'mysql2';

/** The options handed to mysql2 as `ssl`, file contents included. */
export type MysqlTls = Pick<SslOptions, 'ca' | 'cert' | 'key' | 'rejectUnauthorized' | 'verifyIdentity'>;

type ReadFile = (path: string) => string;

const readText: ReadFile = (path) => readFileSync(path, 'utf8');

function value(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}

function pem(env: NodeJS.ProcessEnv, name: string, readFile: ReadFile): string | undefined {
  const file = value(env, name);
  if (file === undefined) return undefined;
  let text: string;
  try {
    text = readFile(file);
  } catch (err) {
    throw new Error(`${name}: cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  // A path to the wrong file (a DER certificate, a directory listing) fails later inside the handshake with a vaguer message.
  if (!text.includes('-----BEGIN ')) throw new Error(`${name}: ${file} is not a PEM file (no -----BEGIN line)`);
  return text;
}

function bool(env: NodeJS.ProcessEnv, name: string): boolean | undefined {
  const v = value(env, name);
  if (v === undefined) return undefined;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new Error(`${name} must be true or false, got "${v}"`);
}

/** The `ssl` option for mysql2, or undefined for plaintext. Reads the files now; a bad value throws with the variable's name. */
export function mysqlTlsFromEnv(env: NodeJS.ProcessEnv = process.env, readFile: ReadFile = readText): MysqlTls | undefined {
  const mode = value(env, 'MYSQL_SSL')?.toLowerCase();
  if (mode !== undefined && mode !== 'required' && mode !== 'off')
    throw new Error(`MYSQL_SSL must be "required" or "off", got "${env.MYSQL_SSL}"`);
  const files = ['MYSQL_SSL_CA', 'MYSQL_SSL_CERT', 'MYSQL_SSL_KEY'].filter((name) => value(env, name) !== undefined);
  const verify = bool(env, 'MYSQL_SSL_REJECT_UNAUTHORIZED');
  if (mode === 'off' && files.length > 0) throw new Error(`MYSQL_SSL=off contradicts ${files.join(', ')}; unset one or the other`);
  const on = mode === 'required' || files.length > 0;
  if (!on) {
    // Set but without effect would let someone believe the connection is verified.
    if (verify !== undefined)
      throw new Error('MYSQL_SSL_REJECT_UNAUTHORIZED is set but TLS is off: set MYSQL_SSL=required or MYSQL_SSL_CA too');
    return undefined;
  }
  if ((value(env, 'MYSQL_SSL_CERT') === undefined) !== (value(env, 'MYSQL_SSL_KEY') === undefined)) {
    throw new Error('MYSQL_SSL_CERT and MYSQL_SSL_KEY must be set together (a client certificate and its private key)');
  }
  const rejectUnauthorized = verify ?? true;
  const tls: MysqlTls = {
    rejectUnauthorized,
    // mysql2 checks the chain only unless told to check the name too; with the system's CAs, any
    // publicly signed certificate would otherwise pass for the database.
    verifyIdentity: rejectUnauthorized,
  };
  const ca = pem(env, 'MYSQL_SSL_CA', readFile);
  const cert = pem(env, 'MYSQL_SSL_CERT', readFile);
  const key = pem(env, 'MYSQL_SSL_KEY', readFile);
  if (ca !== undefined) tls.ca = ca;
  if (cert !== undefined) tls.cert = cert;
  if (key !== undefined) tls.key = key;
  return tls;
}

/** For logs and messages: how the connection is secured, without file contents. */
export function describeMysqlTls(tls: MysqlTls | undefined): string {
  if (!tls) return 'plaintext';
  const parts = [tls.rejectUnauthorized ? 'TLS, verified' : 'TLS, NOT verified'];
  if (tls.ca !== undefined) parts.push('own CA');
  if (tls.cert !== undefined) parts.push('client certificate');
  return parts.join(', ');
}
