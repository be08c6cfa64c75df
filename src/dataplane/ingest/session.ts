/**
 * A pooled connection used directly, for the ingestion transaction only: its statements carry up to
 * 11,000 values, and handing them to mysql2 as they are (mysql2 still escapes every value) saves the
 * query builder's own pass over them, a measurable share of the CPU per batch. The connection comes
 * from, and goes back to, knex's pool.
 */
import { connectionPool, type Db } from '../../db/knex';

export type SqlValue = string | number | null;

export interface SqlSession {
  query<T>(this: void, sql: string, values?: readonly SqlValue[]): Promise<T>;
}

export async function inTransaction<T>(db: Db, fn: (s: SqlSession) => Promise<T>): Promise<T> {
  const conn = await connectionPool(db).acquireConnection();
  const session: SqlSession = {
    query: <R>(sql: string, values: readonly SqlValue[] = []) =>
      new Promise<R>((resolve, reject) => conn.query(sql, values as SqlValue[], (err, rows) => (err ? reject(err) : resolve(rows as R)))),
  };
  try {
    await session.query('START TRANSACTION');
    const result = await fn(session);
    await session.query('COMMIT');
    return result;
  } catch (err) {
    try {
      await session.query('ROLLBACK');
    } catch {
      // A connection that cannot roll back must not go back to the pool: the pool drops destroyed ones.
      conn.destroy();
    }
    throw err;
  } finally {
    await connectionPool(db).releaseConnection(conn);
  }
}
