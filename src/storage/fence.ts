/**
 * Fencing of move attempts: which attempt of an archive, sweep or restore may still change a message's
 * archive and hot tables.
 *
 * Temporal starts attempt N+1 of an activity once attempt N has missed its heartbeats, and N, on a
 * worker that is slow rather than dead, may run on; a later activity (the restore, the next
 * generation's archive) may start while such an attempt still runs. Each attempt therefore claims the
 * message's row in `move_fences` (migration 008) when it starts, for the generation and phase it was
 * started for and with a token of its own, and every step that writes checks that the row still names
 * its token:
 *
 * - inside the step's own transaction, with the row locked in share mode: a claim (which locks it
 *   exclusively) waits until the step has committed, and a step after the claim sees the claim;
 * - around DDL (a DROP TABLE commits implicitly, so no row lock can span it), under a MySQL named lock
 *   per message that claims take too, held on the DDL's own connection.
 *
 * A stale attempt thus fails with StaleAttemptError before its next write, having changed nothing since
 * the newer claim. What may claim (claimRefusal): a later generation always; within a generation, the
 * restore phase over the archive phase (archives and sweeps of a generation all come before its
 * restore); within a phase, a newer attempt of the same workflow run (a higher activity id, or the same
 * activity's higher attempt), and otherwise whichever claims last.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import type { Connection } from 'mysql2';
import { connectionPool, type Db } from '../db/knex';
import type { MessageRef } from '../shared/types';
import { retryOnDeadlock } from './deadlock';

/** 'archive' covers an archive and the sweeps of its generation; 'restore' brings the generation back. */
export type MovePhase = 'archive' | 'restore';

/** What an attempt claims: the generation and phase it was started for, and a token of its own. */
export interface MoveAttempt {
  generation: number;
  phase: MovePhase;
  token: string;
}

/** What `move_fences` says for a message; its phase as stored, checked where it is compared. */
export interface HeldFence {
  generation: number;
  phase: string;
  token: string;
}

/** The attempt no longer holds its message's fence: a newer attempt or a later generation does. It changed nothing since. */
export class StaleAttemptError extends Error {
  override name = 'StaleAttemptError';
}

const TOKEN_MAX = 255;

/** An activity attempt's token: `<workflow run id>/<activity id>/<attempt>`, ordered within a run. */
export function activityAttemptToken(info: { workflowExecution?: { runId: string }; activityId: string; attempt: number }): string {
  // An activity started by no workflow has no run to be ordered in.
  if (!info.workflowExecution) return randomAttemptToken();
  const token = `${info.workflowExecution.runId}/${info.activityId}/${info.attempt}`;
  // Too long for the column only with a custom activity id: unique still, though no longer ordered.
  return token.length <= TOKEN_MAX ? token : `sha256:${sha256Hex(token)}`;
}

/** A token for a caller that is no activity (tests, benchmarks, scripts): it takes over whatever attempt holds the same generation. */
export function randomAttemptToken(): string {
  return `local:${randomUUID()}`;
}

interface ActivityToken {
  run: string;
  activity: number;
  attempt: number;
}

/** The parts of an activity attempt's token; null for any other token. Activity ids are numbers (the SDK's sequence) unless a workflow sets its own. */
export function parseActivityToken(token: string): ActivityToken | null {
  const m = /^(.+)\/(\d{1,15})\/(\d{1,9})$/.exec(token);
  return m ? { run: m[1], activity: Number(m[2]), attempt: Number(m[3]) } : null;
}

const phaseRank = (phase: string): number => (phase === 'archive' ? 0 : phase === 'restore' ? 1 : -1);

/**
 * Why `claim` may not take the fence from the attempt that holds it, or null when it may. Equal
 * generation and phase: the newer attempt takes over, which within one workflow run is the one with
 * the higher activity id, then attempt (a late claim by attempt N after N+1 is refused); across runs,
 * or without activity tokens, the one that claims last.
 */
export function claimRefusal(held: HeldFence | null, claim: MoveAttempt): string | null {
  if (!held) return null;
  if (claim.generation !== held.generation)
    return claim.generation < held.generation ? `generation ${held.generation} has begun (${describe(held)})` : null;
  const [mine, theirs] = [phaseRank(claim.phase), phaseRank(held.phase)];
  if (mine !== theirs) return mine < theirs ? `the ${held.phase} of generation ${held.generation} has begun (${describe(held)})` : null;
  if (held.token === claim.token) return null;
  const [a, b] = [parseActivityToken(held.token), parseActivityToken(claim.token)];
  if (a && b && a.run === b.run && (b.activity < a.activity || (b.activity === a.activity && b.attempt < a.attempt))) {
    return `a newer attempt holds it (${describe(held)})`;
  }
  return null;
}

const describe = (f: HeldFence) => `${f.phase} of generation ${f.generation} by attempt ${f.token}`;

function staleError(ref: MessageRef, attempt: MoveAttempt, why: string): StaleAttemptError {
  return new StaleAttemptError(
    `this ${attempt.phase} attempt of ${ref.kind}:${ref.id} generation ${attempt.generation} (${attempt.token}) is stale: ${why}; it stopped before changing anything`,
  );
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The named lock of a message's moves: at most 64 characters, whatever the id, and the same for the same bytes only. */
export function fenceLockName(ref: MessageRef): string {
  return `interaction-data:move:${sha256Hex(`${ref.kind}\u0000${ref.id}`).slice(0, 40)}`;
}

/** How long a claim or a DDL step waits for the message's named lock (held by a claim, or by a DDL step of another attempt). */
export const FENCE_LOCK_WAIT_SECONDS = 60;

/** Runs one statement on one particular connection: a named lock belongs to the session that took it. */
export type OnConnection = (sql: string, values?: readonly (string | number)[]) => Promise<unknown>;

type Q = Knex | Knex.Transaction;

const SELECT_FENCE = 'SELECT generation, phase, token FROM move_fences WHERE message_kind = ? AND message_id = ?';
/** MariaDB 10.11 has no FOR SHARE; both servers take LOCK IN SHARE MODE. */
export const SELECT_FENCE_SHARED = `${SELECT_FENCE} LOCK IN SHARE MODE`;

function heldOf(row: { generation: number | string; phase: string; token: string } | undefined): HeldFence | null {
  return row ? { generation: Number(row.generation), phase: row.phase, token: row.token } : null;
}

/** The fence from a row of SELECT_FENCE_SHARED read with `rowsAsArray`. */
export function heldFromArray(row: readonly unknown[] | undefined): HeldFence | null {
  return row ? { generation: Number(row[0]), phase: String(row[1]), token: String(row[2]) } : null;
}

async function readFence(q: Q, ref: MessageRef, suffix: '' | ' LOCK IN SHARE MODE' | ' FOR UPDATE'): Promise<HeldFence | null> {
  const [rows] = (await q.raw(`${SELECT_FENCE}${suffix}`, [ref.kind, ref.id])) as [{ generation: number; phase: string; token: string }[]];
  return heldOf(rows[0]);
}

const names = (held: HeldFence | null, attempt: MoveAttempt): boolean =>
  held !== null && held.token === attempt.token && held.generation === attempt.generation && held.phase === attempt.phase;

/** Throws StaleAttemptError unless the fence as read (`held`) names this attempt. */
export function requireHeld(ref: MessageRef, attempt: MoveAttempt, held: HeldFence | null): void {
  if (names(held, attempt)) return;
  throw staleError(ref, attempt, held ? `${describe(held)} holds the message` : 'no attempt holds the message');
}

/**
 * Inside a step's transaction: the fence still names this attempt, and stays so until the transaction
 * ends (the row is locked in share mode, which a claim has to wait for).
 */
export async function assertFenceHeld(trx: Knex.Transaction, ref: MessageRef, attempt: MoveAttempt): Promise<void> {
  requireHeld(ref, attempt, await readFence(trx, ref, ' LOCK IN SHARE MODE'));
}

/**
 * Outside any transaction: throws StaleAttemptError unless the fence names this attempt as read now.
 * For steps whose effect a stale attempt could not make wrong anyway (making the empty current table
 * ingestion would make, recording users of the message as such), so nothing need be held.
 */
export async function checkFence(db: Db, ref: MessageRef, attempt: MoveAttempt): Promise<void> {
  requireHeld(ref, attempt, await readFence(db, ref, ''));
}

/**
 * One attempt of a move: claims the fence, then runs it. A newer attempt's work (a table it dropped,
 * chunks its restore deleted) shows up in this one as some other failure, an integrity error even:
 * the operator should see that this attempt was stale.
 */
export async function runFenced<T>(db: Db, ref: MessageRef, attempt: MoveAttempt, run: () => Promise<T>): Promise<T> {
  await claimFence(db, ref, attempt);
  try {
    return await run();
  } catch (err) {
    throw await staleOr(db, ref, attempt, err);
  }
}

/**
 * The error a failed step should end its attempt with: StaleAttemptError when the attempt no longer
 * holds the fence (its failure was a newer attempt's doing: a table it dropped, chunks its restore
 * deleted), else the step's own error.
 */
async function staleOr(db: Db, ref: MessageRef, attempt: MoveAttempt, err: unknown): Promise<unknown> {
  if (err instanceof StaleAttemptError) return err;
  try {
    const held = await readFence(db, ref, '');
    if (names(held, attempt)) return err;
    const stale = staleError(ref, attempt, held ? `${describe(held)} holds the message` : 'no attempt holds the message');
    stale.cause = err;
    return stale;
  } catch {
    return err;
  }
}

async function getLock(on: OnConnection, ref: MessageRef, waitSeconds: number): Promise<void> {
  const [[row]] = (await on('SELECT GET_LOCK(?, ?) AS got', [fenceLockName(ref), waitSeconds])) as [{ got: number | string | null }[]];
  if (Number(row.got) !== 1) {
    throw new Error(
      `the move lock of ${ref.kind}:${ref.id} stayed taken for ${waitSeconds} s (another attempt dropping its table?); the attempt is retried`,
    );
  }
}

/** Releases the named lock; a session that cannot is ended, which releases it, and the pool drops the connection. */
async function releaseLock(on: OnConnection, conn: Connection, ref: MessageRef): Promise<void> {
  await on('SELECT RELEASE_LOCK(?)', [fenceLockName(ref)]).catch(() => conn.destroy());
}

/**
 * Claims the message's fence for this attempt, at its start: refused with StaleAttemptError when a
 * later generation or phase, or a newer attempt of the same run, holds it (claimRefusal). Waits for
 * the steps of the attempt holding it that are under way (their transactions hold the row in share
 * mode, a DDL step the named lock); from then on that attempt's steps fail.
 */
export async function claimFence(db: Db, ref: MessageRef, attempt: MoveAttempt, waitSeconds = FENCE_LOCK_WAIT_SECONDS): Promise<void> {
  if (!attempt.token || attempt.token.length > TOKEN_MAX)
    throw new Error(`an attempt token is 1-${TOKEN_MAX} characters, got ${JSON.stringify(attempt.token)}`);
  const conn = await connectionPool(db).acquireConnection();
  const on: OnConnection = (sql, values = []) => db.raw(sql, [...values]).connection(conn);
  let locked = false;
  try {
    await getLock(on, ref, waitSeconds);
    locked = true;
    await retryOnDeadlock(async () => {
      // The row first, on its own: locking a row that is not there would lock the gap of the key it
      // would go into, which the first claims of two new messages could deadlock on.
      await on(
        "INSERT INTO move_fences (message_kind, message_id, generation, phase, token) VALUES (?, ?, 0, 'archive', '') ON DUPLICATE KEY UPDATE message_kind = message_kind",
        [ref.kind, ref.id],
      );
      await db.transaction(
        async (trx) => {
          const refusal = claimRefusal(await readFence(trx, ref, ' FOR UPDATE'), attempt);
          if (refusal) throw staleError(ref, attempt, refusal);
          await trx('move_fences')
            .where({ message_kind: ref.kind, message_id: ref.id })
            .update({
              generation: attempt.generation,
              phase: attempt.phase,
              token: attempt.token,
              claimed_at: trx.raw('CURRENT_TIMESTAMP(3)'),
            });
        },
        { connection: conn },
      );
    });
  } finally {
    if (locked) await releaseLock(on, conn, ref);
    await connectionPool(db).releaseConnection(conn);
  }
}

/**
 * For a DDL step, on the connection that will run it: takes the message's named lock (so no claim can
 * come between) and checks that the fence names this attempt. Returns what releases the lock, to be
 * called once the DDL is done, whatever happened; throws StaleAttemptError, lock released, when the
 * attempt is stale.
 */
export async function holdFenceForDdl(
  on: OnConnection,
  conn: Connection,
  ref: MessageRef,
  attempt: MoveAttempt,
  waitSeconds = FENCE_LOCK_WAIT_SECONDS,
): Promise<() => Promise<void>> {
  await getLock(on, ref, waitSeconds);
  const release = () => releaseLock(on, conn, ref);
  try {
    const [rows] = (await on(SELECT_FENCE, [ref.kind, ref.id])) as [{ generation: number; phase: string; token: string }[]];
    requireHeld(ref, attempt, heldOf(rows[0]));
  } catch (err) {
    await release();
    throw err;
  }
  return release;
}
