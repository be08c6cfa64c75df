/**
 * MariaDB answers `INSERT ... RETURNING` (10.5+) with the rows as the statement left them: one
 * statement both writes and proves what it wrote. MySQL has no RETURNING, and the restore reads the
 * rows again there.
 */
import type { Db } from '../db/knex';

const known = new WeakMap<Db, Promise<boolean>>();

/** Whether the server behind `db` is MariaDB (and so supports RETURNING); asked once per pool. */
export function supportsReturning(db: Db): Promise<boolean> {
  let answer = known.get(db);
  if (!answer) {
    answer = db.raw('SELECT VERSION() AS v').then(([rows]: [{ v: string }[]]) => /mariadb/i.test(rows[0]?.v ?? ''));
    // A failed probe is asked again next time rather than remembered.
    answer.catch(() => known.delete(db));
    known.set(db, answer);
  }
  return answer;
}
