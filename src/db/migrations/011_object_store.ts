import type { Knex } from 'knex';

/**
 * Long-term storage in object storage (src/archive/): a chunk's bytes are either in its catalog row
 * (`store` 'mysql', the payload as before) or in an object of the S3 store (`store` 's3',
 * `object_key`, no payload). The catalog stays here and remains what the service trusts; `bytes`
 * is a chunk's stored size whichever store holds it.
 *
 * A generation's `store` says where its new chunks go (a sweep appends to the generation's store,
 * whatever the worker's setting is now) and `chunk_rows` pins its chunk size, so every attempt cuts
 * a table into the same chunks and an object key names the same rows whichever attempt wrote it.
 * `described_checksum` says which state of the generation the store's own description (the bucket's
 * manifest.json) was written for, so a sweep that changed nothing sends nothing, and an attempt that
 * died before writing it has it written by the next.
 * Every generation archived before this migration is in MySQL and stays restorable from there.
 */
export async function up(knex: Knex): Promise<void> {
  if (!(await knex.schema.hasColumn('archive_chunks', 'store'))) {
    await knex.schema.alterTable('archive_chunks', (t) => {
      t.string('store', 8).notNullable().defaultTo('mysql');
      t.string('object_key', 1024).nullable();
      t.bigInteger('bytes').unsigned().nullable();
    });
  }
  await knex.raw('ALTER TABLE archive_chunks MODIFY payload LONGBLOB NULL');
  await knex('archive_chunks')
    .whereNull('bytes')
    .update({ bytes: knex.raw('LENGTH(payload)') });
  if (!(await knex.schema.hasColumn('archive_manifests', 'store'))) {
    await knex.schema.alterTable('archive_manifests', (t) => {
      t.string('store', 8).notNullable().defaultTo('mysql');
      t.integer('chunk_rows').unsigned().nullable();
    });
  }
  if (!(await knex.schema.hasColumn('archive_manifests', 'described_checksum'))) {
    await knex.schema.alterTable('archive_manifests', (t) => {
      // The manifest checksum the store's own description of the generation (manifest.json) was last written for.
      t.specificType('described_checksum', 'CHAR(64)').nullable();
    });
  }
}

export async function down(knex: Knex): Promise<void> {
  const inObjects = await knex('archive_chunks').where({ store: 's3' }).first<{ seq: number } | undefined>('seq');
  if (inObjects) throw new Error('chunks are in object storage; move them back to MySQL before undoing migration 011');
  await knex.raw('ALTER TABLE archive_chunks MODIFY payload LONGBLOB NOT NULL');
  await knex.schema.alterTable('archive_chunks', (t) => {
    t.dropColumn('store');
    t.dropColumn('object_key');
    t.dropColumn('bytes');
  });
  await knex.schema.alterTable('archive_manifests', (t) => {
    t.dropColumn('store');
    t.dropColumn('chunk_rows');
    t.dropColumn('described_checksum');
  });
}
