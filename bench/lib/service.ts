/**
 * One message archived and restored by the service itself: the lifecycle actor on a private Temporal
 * dev server, the production worker in a child process (memory read from /proc), the stop and
 * restore signals a user would send. Times come from the actor's own history (server clock) as well
 * as from the signal to the state being visible, so nothing of the service's overhead is left out.
 */
import type { LifecycleStatus, MessageRef } from '../../src/shared/types';
import { lifecycleWorkflowId } from '../../src/shared/workflowId';
import { restoreSignal } from '../../workflows/definitions';
import { currentHotTable } from '../../src/storage/hotTables';
import { countHotRows, hotFingerprint, tableBytes, type BenchDatabase } from './dataset';
import { cpuSeconds, fmtInt, fmtMB, readMemory } from './proc';
import { settlePurge } from './purge';
import {
  activityTimings,
  resetStickiness,
  spawnBenchWorker,
  timelineSince,
  startBenchTemporal,
  waitForIdleActor,
  waitForStatus,
  type BenchTemporal,
  type BenchWorker,
} from './stack';

export interface MovePhase {
  rows: number;
  /** Activity time, scheduled → completed, from the actor's history. */
  activitySeconds: number;
  /** From the signal to the actor reporting the end state (includes the 1 s TTL for the archive). */
  endToEndSeconds: number;
  attempts: number;
  rowsPerSecond: number;
  /** Peak resident set size of the worker during the phase: highest VmRSS sampled, and VmHWM. */
  workerPeakRss: number;
  workerHwm: number;
  /** The worker's RSS when idle just before the phase (started, workflow code bundled), for scale. */
  workerIdleRss: number;
  /** Peak over the worker's life up to the phase, start-up included, for comparison. */
  workerStartupHwm: number;
  /** CPU seconds used during the phase by the database server (when it runs here) and by the worker. */
  dbCpuSeconds: number | null;
  workerCpuSeconds: number;
  /** CPU seconds of the embedded S3 gateway during the phase, when archives go to it. */
  gatewayCpuSeconds: number | null;
}

export interface ServiceRun {
  archive: MovePhase;
  restore: MovePhase;
  /** Long-term storage: the chunks' stored bytes (payloads in MySQL, or objects), and the archive_chunks table as InnoDB stores it. */
  payloadBytes: number;
  /** Where the chunks went: mysql or s3. */
  store: string;
  chunkTableBytes: number;
  chunks: number;
  fingerprintBefore: string;
  fingerprintAfterRestore: string;
}

/** Waits until the worker answers a query, so that start-up (bundling the workflow code) is not timed. */
async function warmUp(temporal: BenchTemporal, worker: BenchWorker, ref: MessageRef): Promise<void> {
  await temporal.lifecycle.stop(ref.kind, ref.id);
  const exited = new Promise<never>((_, reject) =>
    worker.child.once('exit', (code) => reject(new Error(`worker exited (${code}) during start-up`))),
  );
  exited.catch(() => undefined);
  await Promise.race([waitForStatus(temporal.lifecycle, ref, () => true, 120_000, 200), exited]);
}

export interface ArchiveRestoreOptions {
  log: (msg: string) => void;
  chunkRows?: number;
  timeoutMs?: number;
  /** The database server's process, when it runs on this machine: its CPU time is reported. */
  dbPid?: number | null;
  /** The S3 gateway's process, when archives go to one on this machine. */
  gatewayPid?: number | null;
}

/** Runs one phase on a fresh worker: start, warm up, reset the peaks, act, wait, collect. */
async function phase(
  temporal: BenchTemporal,
  bench: BenchDatabase,
  opts: ArchiveRestoreOptions,
  ttl: string,
  target: MessageRef,
  warmUpId: string,
  act: () => Promise<void>,
  until: () => Promise<{ at: number; status: LifecycleStatus }>,
): Promise<{ figures: Omit<MovePhase, 'rows' | 'activitySeconds' | 'attempts' | 'rowsPerSecond'>; status: LifecycleStatus }> {
  const worker = spawnBenchWorker({ temporalAddress: temporal.address, mysqlUrl: bench.url, ttl, chunkRows: opts.chunkRows });
  try {
    await warmUp(temporal, worker, { kind: 'campaign', id: warmUpId });
    // The archive's deletes leave InnoDB purge work behind; a real restore comes months later.
    await settlePurge(bench.db);
    const pid = worker.child.pid ?? -1;
    const idle = readMemory(pid);
    worker.memory.resetPeak();
    const db0 = opts.dbPid ? cpuSeconds(opts.dbPid) : NaN;
    const g0 = opts.gatewayPid ? cpuSeconds(opts.gatewayPid) : NaN;
    const w0 = cpuSeconds(pid);
    const started = performance.now();
    await act();
    const done = await until();
    const dbCpu = opts.dbPid ? cpuSeconds(opts.dbPid) - db0 : NaN;
    const gatewayCpu = opts.gatewayPid ? cpuSeconds(opts.gatewayPid) - g0 : NaN;
    const workerCpu = cpuSeconds(pid) - w0;
    await waitForIdleActor(temporal.client, target);
    const mem = await worker.stop();
    await resetStickiness(temporal.client, target);
    return {
      status: done.status,
      figures: {
        endToEndSeconds: (done.at - started) / 1000,
        workerPeakRss: mem.peakRss,
        workerHwm: mem.hwm,
        workerIdleRss: idle?.rss ?? 0,
        workerStartupHwm: idle?.hwm ?? 0,
        dbCpuSeconds: Number.isNaN(dbCpu) ? null : dbCpu,
        workerCpuSeconds: workerCpu,
        gatewayCpuSeconds: Number.isNaN(gatewayCpu) ? null : gatewayCpu,
      },
    };
  } finally {
    await worker.stop();
  }
}

export async function archiveAndRestore(bench: BenchDatabase, target: MessageRef, opts: ArchiveRestoreOptions): Promise<ServiceRun> {
  const { log } = opts;
  const timeoutMs = opts.timeoutMs ?? 60 * 60_000;
  const fingerprintBefore = await hotFingerprint(bench.db, target);
  const rows = await countHotRows(bench.db, target);
  const temporal = await startBenchTemporal();
  try {
    // Archive: a TTL of one second, so the stop leads straight to expiry.
    const a = await phase(
      temporal,
      bench,
      opts,
      '1 second',
      target,
      'bench-warm-up-1',
      async () => {
        await temporal.lifecycle.stop(target.kind, target.id);
      },
      () => waitForStatus(temporal.lifecycle, target, (s) => s.state === 'expired', timeoutMs, 100),
    );
    const expired = a.status;
    if (expired.archive?.rowCount !== rows) throw new Error(`archived ${expired?.archive?.rowCount} rows, expected ${rows}`);
    if ((await countHotRows(bench.db, target)) !== 0) throw new Error('hot rows left after the archive');
    const [archiveTiming] = await activityTimings(temporal.client, target, 'archiveInteractions');
    const archive: MovePhase = {
      rows,
      activitySeconds: archiveTiming.seconds,
      attempts: archiveTiming.attempts,
      rowsPerSecond: rows / archiveTiming.seconds,
      ...a.figures,
    };
    log(
      `  archive: ${fmtInt(rows)} rows in ${archive.activitySeconds.toFixed(1)} s (${fmtInt(archive.rowsPerSecond)} rows/s), ` +
        `worker peak ${fmtMB(archive.workerHwm)} (idle ${fmtMB(archive.workerIdleRss)})`,
    );

    const [payload] = (await bench.db.raw(
      'SELECT COALESCE(SUM(COALESCE(bytes, LENGTH(payload))), 0) AS bytes, COUNT(*) AS chunks, MIN(store) AS store FROM archive_chunks WHERE message_kind = ? AND message_id = ?',
      [target.kind, target.id],
    )) as [{ bytes: string | number; chunks: string | number; store: string }[]];
    const chunkTable = await tableBytes(bench.db, 'archive_chunks');

    // Restore: a worker with a long TTL, so the restored message stays stopped rather than expiring again.
    const r = await phase(
      temporal,
      bench,
      opts,
      '30 days',
      target,
      'bench-warm-up-2',
      // The signal itself: LifecycleClient.restore would first query the actor, and a query to an actor
      // whose last worker was stopped waits out Temporal's sticky-queue timeout (about 10 s), which is
      // the benchmark's doing (a worker per phase), not the restore's.
      () =>
        temporal.client.workflow
          .getHandle(lifecycleWorkflowId(target))
          .signal(restoreSignal, { requestedBy: 'bench@example.com', requestId: 'bench-restore' }),
      () => waitForStatus(temporal.lifecycle, target, (s) => s.state === 'stopped' && s.lastRestore !== null, timeoutMs, 100),
    );
    const [restoreTiming] = await activityTimings(temporal.client, target, 'restoreInteractions');
    if (process.env.BENCH_TIMELINE) log(`restore timeline:\n${await timelineSince(temporal.client, target, 'restore')}`);
    const restore: MovePhase = {
      rows,
      activitySeconds: restoreTiming.seconds,
      attempts: restoreTiming.attempts,
      rowsPerSecond: rows / restoreTiming.seconds,
      ...r.figures,
    };
    const fingerprintAfterRestore = await hotFingerprint(bench.db, target);
    if (fingerprintAfterRestore !== fingerprintBefore)
      throw new Error(`restored rows differ: ${fingerprintAfterRestore} vs ${fingerprintBefore}`);
    log(
      `  restore: ${fmtInt(rows)} rows in ${restore.activitySeconds.toFixed(1)} s (${fmtInt(restore.rowsPerSecond)} rows/s), ` +
        `end to end ${restore.endToEndSeconds.toFixed(1)} s, worker peak ${fmtMB(restore.workerHwm)}`,
    );
    return {
      archive,
      restore,
      payloadBytes: Number(payload[0].bytes),
      store: payload[0].store,
      chunkTableBytes: chunkTable.data + chunkTable.index,
      chunks: Number(payload[0].chunks),
      fingerprintBefore,
      fingerprintAfterRestore,
    };
  } finally {
    await temporal.close();
  }
}

/**
 * data+index bytes the message's rows take hot: its own table, as the service keeps it (for a large
 * message, with its secondary index built by a sort when the data set was made, so compact).
 */
export async function hotBytesOf(bench: BenchDatabase, target: MessageRef): Promise<{ data: number; index: number }> {
  const table = await currentHotTable(bench.db, target);
  if (!table) throw new Error(`${target.kind}:${target.id} has no hot table`);
  const bytes = await tableBytes(bench.db, table.name);
  return { data: bytes.data, index: bytes.index };
}
