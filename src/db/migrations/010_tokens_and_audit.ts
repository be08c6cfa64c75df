import type { Knex } from 'knex';

/**
 * API tokens and the audit trail.
 *
 * A token's secret is kept only as its SHA-256: secrets are 256 random bits, so a slow password hash
 * would add nothing but latency to every request. The public id before the secret finds the row
 * without comparing hashes across the table. Revoked tokens are kept (revoked_at) so the audit trail
 * can still name them.
 *
 * `audit_log` keeps every mutating request and every refused one: who (principal), with which scope,
 * on which route and target, with which outcome, when.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('api_tokens', (t) => {
    t.specificType('id', 'VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin').notNullable().primary();
    t.string('name', 128).notNullable();
    t.specificType('secret_sha256', 'CHAR(64) CHARACTER SET ascii COLLATE ascii_bin').notNullable();
    t.string('scopes', 255).notNullable();
    t.string('email', 320).nullable();
    t.datetime('created_at', { precision: 3 }).notNullable();
    t.string('created_by', 255).notNullable().defaultTo('');
    t.datetime('expires_at', { precision: 3 }).nullable();
    t.datetime('revoked_at', { precision: 3 }).nullable();
    t.datetime('last_used_at', { precision: 3 }).nullable();
    t.index(['name']);
  });
  await knex.schema.createTable('audit_log', (t) => {
    t.bigIncrements('id');
    t.datetime('at', { precision: 3 }).notNullable();
    t.string('principal', 255).notNullable();
    t.string('principal_name', 255).notNullable().defaultTo('');
    t.string('scope', 32).nullable();
    t.string('method', 8).notNullable();
    t.string('route', 255).notNullable();
    t.string('target', 512).notNullable().defaultTo('');
    t.smallint('status').unsigned().notNullable();
    t.string('outcome', 16).notNullable();
    t.string('request_id', 64).notNullable().defaultTo('');
    t.string('source', 64).notNullable().defaultTo('');
    t.index(['at']);
    t.index(['principal', 'at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('audit_log');
  await knex.schema.dropTableIfExists('api_tokens');
}
