/**
 * The service's Prometheus metrics, one registry per process: the API serves it at GET /metrics, the
 * worker on WORKER_METRICS_PORT. Counters are incremented where the thing happens (ingestion's route,
 * the move activities, the e-mail activity); the actors-by-state gauge is read from MySQL when scraped.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Db } from '../db/knex';
import { LIFECYCLE_STATES, type LifecycleState } from '../shared/types';
import { countHeldMessages, readArchivingPause } from '../storage/archivingPause';

export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'interaction_data_' });

export const eventsIngested = new Counter({
  name: 'interaction_data_events_ingested_total',
  help: 'Interaction events received by ingestion, by outcome: stored, duplicate (an event id already stored), erased (refused: its user was erased after it occurred).',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

export const rowsMoved = new Counter({
  name: 'interaction_data_rows_moved_total',
  help: 'Interaction rows moved by the archive (into long-term storage) and the restore (back into MySQL), chunk by chunk.',
  labelNames: ['move'] as const,
  registers: [registry],
});

export const moveDuration = new Histogram({
  name: 'interaction_data_move_duration_seconds',
  help: 'How long an attempt of an archive, sweep or restore activity took, by move and outcome (ok, failed).',
  labelNames: ['move', 'outcome'] as const,
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
  registers: [registry],
});

export const moveFailures = new Counter({
  name: 'interaction_data_move_failures_total',
  help: 'Failed attempts of archive and restore activities, by move and error type (Temporal retries most; the types in PROBLEM_FAILURE_TYPES wait for an operator).',
  labelNames: ['move', 'type'] as const,
  registers: [registry],
});

export const moveWaits = new Counter({
  name: 'interaction_data_move_throttle_seconds_total',
  help: 'Seconds moves waited between chunks, by move and why: nice (MOVE_NICE_RATIO of the chunk time) or load (MySQL Threads_running above MOVE_MAX_THREADS_RUNNING).',
  labelNames: ['move', 'why'] as const,
  registers: [registry],
});

export const emails = new Counter({
  name: 'interaction_data_restore_emails_total',
  help: 'Restore e-mails handed to the mail provider (sent) or failed (an attempt Temporal will retry).',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

const actors = new Gauge({
  name: 'interaction_data_messages',
  help: 'Messages by lifecycle state, as their actors last recorded it in message_availability (read when scraped).',
  labelNames: ['state'] as const,
  registers: [registry],
});

export const callbacks = new Counter({
  name: 'interaction_data_callbacks_total',
  help: 'Restore callbacks delivered (answered 2xx); failed attempts are retried by Temporal and show in its activity metrics.',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

const archivingPaused = new Gauge({
  name: 'interaction_data_archiving_paused',
  help: '1 while archiving is paused (`interaction-data archiving pause`), else 0 (read when scraped).',
  registers: [registry],
});

const archivingHeld = new Gauge({
  name: 'interaction_data_archiving_held_messages',
  help: 'Messages due whose actors found archiving paused and keep their data until it resumes (read when scraped).',
  registers: [registry],
});

let stateSource: Db | null = null;

/** The database the messages-by-state gauge reads when scraped; without one it is left out. */
export function countStatesFrom(db: Db): void {
  stateSource = db;
}

/** The registry's text, with the gauge read first. */
export async function metricsText(): Promise<string> {
  if (stateSource) {
    const rows = await stateSource('message_availability')
      .groupBy('state')
      .select<{ state: LifecycleState; n: number | string }[]>('state', stateSource.raw('COUNT(*) as n'));
    const counts = new Map(rows.map((r) => [r.state, Number(r.n)]));
    for (const state of LIFECYCLE_STATES) actors.set({ state }, counts.get(state) ?? 0);
    archivingPaused.set((await readArchivingPause(stateSource)).paused ? 1 : 0);
    archivingHeld.set(await countHeldMessages(stateSource));
  }
  return registry.metrics();
}

export const METRICS_CONTENT_TYPE = registry.contentType;

/** Times `run` as one attempt of `move`, counting its failure by error type. */
export async function timedMove<T>(move: 'archive' | 'restore', run: () => Promise<T>): Promise<T> {
  const end = moveDuration.startTimer({ move });
  try {
    const result = await run();
    end({ outcome: 'ok' });
    return result;
  } catch (err) {
    end({ outcome: 'failed' });
    const type = err instanceof Error ? ((err as { type?: string }).type ?? err.name) : 'Error';
    moveFailures.inc({ move, type });
    throw err;
  }
}
