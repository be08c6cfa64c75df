/**
 * A platform past one machine, modelled hour by hour from the figures the benchmarks measured here
 * (docs/SCALING.md, *Past one machine*): the latest `bench:backlog` entry in
 * docs/benchmark-runs/backlog.json gives each expiry's CPU in the worker, the Temporal server and
 * MySQL and its history events; the latest `bench:ingest` entry MySQL's ingestion rate on this machine's
 * two cores. It is a model, not a run of a cluster: it assumes the cost per expiry and per event stays
 * what one machine measured as replicas are added, and a self-hosted Temporal on SQL persistence
 * costing what the dev server does.
 *
 * The rollout: PLAN_BACKLOG_FRACTION of PLAN_MESSAGES are past their TTL when the service starts, the
 * rest stop and expire evenly over PLAN_TTL_DAYS. Each hour the actors that can archive are the
 * smallest capacity of the workers', Temporal's and MySQL's cores (what ingestion leaves of MySQL's).
 * Reported: cores of each for the backlog to drain within PLAN_DRAIN_DAYS with none of them more than
 * PLAN_TARGET_USE busy (0.7), the hours it then takes, the steady state after it, and history events per
 * second.
 *
 *   npm run plan:capacity
 *   PLAN_MESSAGES=1000000 PLAN_EVENTS_PER_SECOND=5000 npm run plan:capacity
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { envInt, table } from './lib/report';
import { REPO_ROOT } from './lib/stack';

interface BacklogRun {
  date: string;
  commit: string;
  command: string;
  actorsPerMinute: number;
  cpuMsPerActor: { mysql: number; temporal: number; worker: number };
  historyEventsPerActorMedian: number;
}

interface IngestRun {
  date: string;
  commit: string;
  eventsPerSecond: number[];
}

function latest<T>(name: string): T {
  const runs = JSON.parse(readFileSync(path.join(REPO_ROOT, 'docs', 'benchmark-runs', `${name}.json`), 'utf8')) as T[];
  if (runs.length === 0) throw new Error(`docs/benchmark-runs/${name}.json holds no run`);
  return runs[runs.length - 1];
}

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got "${raw}"`);
  return n;
}

/** Cores of the machine the figures were measured on, whose MySQL `bench:ingest` measured. */
const MEASURED_MYSQL_CORES = 2;

export interface Platform {
  messages: number;
  eventsPerSecond: number;
  ttlDays: number;
  backlogFraction: number;
  drainDays: number;
  /** The share of each kind of core the load may use at its peak (headroom for spikes and failover). */
  targetUse: number;
}

export interface Costs {
  /** CPU seconds per expiry. */
  worker: number;
  temporal: number;
  mysql: number;
  historyEvents: number;
  /** Events per second per MySQL core, ingestion alone. */
  eventsPerMysqlCore: number;
}

export interface Sizing {
  workerCores: number;
  temporalCores: number;
  /** MySQL cores in all: ingestion's and the expiries'. */
  mysqlCores: number;
  ingestionMysqlCores: number;
}

export interface Outcome {
  hoursToDrain: number;
  peakHistoryEventsPerSecond: number;
  steadyExpiriesPerSecond: number;
  steadyUse: { worker: number; temporal: number; mysql: number };
}

/** Cores of each kind for the backlog to drain within the window, beside the steady expiries and ingestion. */
export function sizeFor(p: Platform, c: Costs): Sizing {
  const steady = p.messages / (p.ttlDays * 86_400);
  const rate = (p.messages * p.backlogFraction) / (p.drainDays * 86_400) + steady;
  const ingestionMysqlCores = p.eventsPerSecond / c.eventsPerMysqlCore;
  return {
    workerCores: Math.ceil((rate * c.worker) / p.targetUse),
    temporalCores: Math.ceil((rate * c.temporal) / p.targetUse),
    mysqlCores: Math.ceil((ingestionMysqlCores + rate * c.mysql) / p.targetUse),
    ingestionMysqlCores,
  };
}

/** Runs the rollout hour by hour with these cores until the backlog is gone (or a year has passed). */
export function simulate(p: Platform, c: Costs, s: Sizing): Outcome {
  const steadyPerHour = p.messages / (p.ttlDays * 24);
  const mysqlForExpiries = Math.max(0, s.mysqlCores - s.ingestionMysqlCores);
  const capacityPerHour = Math.min(
    (s.workerCores * 3600) / c.worker,
    (s.temporalCores * 3600) / c.temporal,
    (mysqlForExpiries * 3600) / c.mysql,
  );
  let due = p.messages * p.backlogFraction;
  let hours = 0;
  let peakPerHour = 0;
  while (due > 0 && hours < 24 * 365) {
    due += steadyPerHour;
    const done = Math.min(due, capacityPerHour);
    peakPerHour = Math.max(peakPerHour, done);
    due -= done;
    hours += 1;
  }
  const steady = steadyPerHour / 3600;
  return {
    hoursToDrain: due > 0 ? Infinity : hours,
    peakHistoryEventsPerSecond: (peakPerHour / 3600) * c.historyEvents,
    steadyExpiriesPerSecond: steady,
    steadyUse: {
      worker: (steady * c.worker) / s.workerCores,
      temporal: (steady * c.temporal) / s.temporalCores,
      mysql: (s.ingestionMysqlCores + steady * c.mysql) / s.mysqlCores,
    },
  };
}

function main(): void {
  const backlog = latest<BacklogRun>('backlog');
  const ingest = latest<IngestRun>('ingest');
  const platform: Platform = {
    messages: envInt('PLAN_MESSAGES', 10_000_000),
    eventsPerSecond: envInt('PLAN_EVENTS_PER_SECOND', 50_000),
    ttlDays: envNumber('PLAN_TTL_DAYS', 90),
    backlogFraction: envNumber('PLAN_BACKLOG_FRACTION', 0.8),
    drainDays: envNumber('PLAN_DRAIN_DAYS', 7),
    targetUse: envNumber('PLAN_TARGET_USE', 0.7),
  };
  const ingestRate = Math.min(...ingest.eventsPerSecond);
  const costs: Costs = {
    worker: backlog.cpuMsPerActor.worker / 1000,
    temporal: backlog.cpuMsPerActor.temporal / 1000,
    mysql: backlog.cpuMsPerActor.mysql / 1000,
    historyEvents: backlog.historyEventsPerActorMedian,
    eventsPerMysqlCore: ingestRate / MEASURED_MYSQL_CORES,
  };
  const sizing = sizeFor(platform, costs);
  const outcome = simulate(platform, costs, sizing);
  const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
  const say = (line: string) => console.log(line);
  say(`measured: bench:backlog ${backlog.date} (${backlog.commit}, ${backlog.command}); bench:ingest ${ingest.date} (${ingest.commit})`);
  say(
    `platform: ${platform.messages.toLocaleString('en-US')} messages, ${platform.eventsPerSecond.toLocaleString('en-US')} events/s, ` +
      `TTL ${platform.ttlDays} days, ${pct(platform.backlogFraction)} due at rollout, to drain within ${platform.drainDays} days, ` +
      `cores at most ${pct(platform.targetUse)} busy`,
  );
  const rollout = (platform.messages * platform.backlogFraction) / (platform.drainDays * 86_400) + outcome.steadyExpiriesPerSecond;
  say(
    `expiries needed: ${rollout.toFixed(1)}/s (${Math.round(rollout * 60).toLocaleString('en-US')} actors per minute) while the backlog drains`,
  );
  say(
    table(
      ['', 'cores', 'steady use after the rollout'],
      [
        ['workers', String(sizing.workerCores), pct(outcome.steadyUse.worker)],
        ['Temporal (history, matching, persistence)', String(sizing.temporalCores), pct(outcome.steadyUse.temporal)],
        [`MySQL (ingestion ${sizing.ingestionMysqlCores.toFixed(1)} of them)`, String(sizing.mysqlCores), pct(outcome.steadyUse.mysql)],
      ],
    ),
  );
  say(
    `the backlog drains in ${(outcome.hoursToDrain / 24).toFixed(1)} days; then ${outcome.steadyExpiriesPerSecond.toFixed(2)} expiries/s; ` +
      `history events at the peak ${Math.round(outcome.peakHistoryEventsPerSecond).toLocaleString('en-US')}/s`,
  );
}

if (require.main === module) main();
