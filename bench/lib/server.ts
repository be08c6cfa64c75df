/**
 * The MariaDB a benchmark runs on. By default a private server (the machine's own binaries, data under
 * .data/bench/mysql, a port of its own), for two reasons: the benchmark's heavy I/O then does not
 * disturb whoever else uses the machine's server, and it can be sized like a production server:
 * buffer pool BENCH_BUFFER_POOL, default 4G (room for bench:archive's 6,000,000-row table with its
 * indexes), redo log BENCH_REDO_LOG, default 1G. MariaDB's 96 MB default holds far less than moving a
 * million rows writes to it, so with it InnoDB spends the move flushing pages early to free log space,
 * and a restore is slower (docs/BENCHMARKS.md). Table caches
 * (table_open_cache, table_definition_cache) BENCH_TABLE_CACHE, default 25,000: every message has a
 * table of its own (src/storage/hotTables.ts), so bench:actors' 10,000 actors are 10,000 tables, and
 * more while archives swap fresh ones in; MariaDB's 2,000 and 400 would have it reopen tables all along,
 * which a server sized for this layout does not. Everything else is MariaDB's defaults, durable
 * commits included. BENCH_MYSQL_URL runs on an existing server instead, as it is configured.
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createDb } from '../../src/db/knex';
import { ensureLocalMysql, type LocalMysqlHandle } from '../../src/db/localMysql';
import { createLogger } from '../../src/logger';
import { freePort } from '../../src/temporal/devServer';
import { envInt, log } from './report';
import { REPO_ROOT } from './stack';

export interface BenchServer {
  /** URL of the server (database part to be replaced per benchmark database). */
  url: string;
  description: string;
  bufferPoolBytes: number;
  /** The server's process when it runs on this machine under our control: its CPU time is read from /proc. */
  pid: number | null;
  stop(): Promise<void>;
}

export function parseBytes(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)B?$/i.exec(text.trim());
  if (!m) throw new Error(`not a size: "${text}" (e.g. 4G, 512M)`);
  const unit = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[m[2].toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
  return Math.round(Number(m[1]) * unit);
}

async function serverFacts(url: string): Promise<{ version: string; bufferPool: number; redoLog: number; tableCache: number }> {
  const db = createDb(url, { min: 0, max: 1 });
  try {
    const [rows] = (await db.raw(
      'SELECT VERSION() AS v, @@innodb_buffer_pool_size AS b, LEAST(@@table_open_cache, @@table_definition_cache) AS t',
    )) as [{ v: string; b: string | number; t: string | number }[]];
    // MySQL 8.0.30+ sizes its redo log by innodb_redo_log_capacity and ignores innodb_log_file_size
    // once that is set; MariaDB has only the latter.
    const [redo] = (await db.raw("SHOW GLOBAL VARIABLES WHERE Variable_name IN ('innodb_redo_log_capacity', 'innodb_log_file_size')")) as [
      { Variable_name: string; Value: string }[],
    ];
    const size = (name: string) => redo.find((r) => r.Variable_name === name)?.Value;
    return {
      version: rows[0].v,
      bufferPool: Number(rows[0].b),
      redoLog: Number(size('innodb_redo_log_capacity') ?? size('innodb_log_file_size') ?? 0),
      tableCache: Number(rows[0].t),
    };
  } finally {
    await db.destroy();
  }
}

/**
 * Sizes a server's buffer pool and redo log (and, when given, its table caches) as a production server
 * holding the benchmark's working set would be, online, and returns once the resizes have finished.
 */
export async function sizeLikeProduction(
  url: string,
  size: { bufferPoolBytes: number; redoLogBytes: number; tableCache?: number },
): Promise<void> {
  const db = createDb(url, { min: 0, max: 1 });
  try {
    if (size.tableCache !== undefined) {
      await db.raw('SET GLOBAL table_open_cache = ?', [size.tableCache]);
      await db.raw('SET GLOBAL table_definition_cache = ?', [size.tableCache]);
    }
    // Resizing the redo log is online from MariaDB 10.9 on (the statement returns once it is done);
    // MySQL 8.0.30+ names the same setting innodb_redo_log_capacity.
    const redo = [size.redoLogBytes];
    await db.raw('SET GLOBAL innodb_log_file_size = ?', redo).catch(() => db.raw('SET GLOBAL innodb_redo_log_capacity = ?', redo));
    // Resizing is online in MariaDB 10.2+; wait until it has finished before measuring anything.
    await db.raw('SET GLOBAL innodb_buffer_pool_size = ?', [size.bufferPoolBytes]);
    for (let i = 0; i < 600; i++) {
      const [rows] = (await db.raw("SHOW STATUS LIKE 'Innodb_buffer_pool_resize_status'")) as [{ Value: string }[]];
      const [current] = (await db.raw('SELECT @@innodb_buffer_pool_size AS b')) as [{ b: string | number }[]];
      if (Number(current[0].b) >= size.bufferPoolBytes && !/resizing|withdraw|allocat/i.test(rows[0]?.Value ?? '')) break;
      await sleep(200);
    }
  } finally {
    await db.destroy();
  }
}

export async function startBenchServer(log: (msg: string) => void): Promise<BenchServer> {
  const given = process.env.BENCH_MYSQL_URL;
  if (given) {
    const facts = await serverFacts(given);
    return {
      url: given,
      description: `MariaDB/MySQL ${facts.version} at ${new URL(given).host} as configured (buffer pool ${(facts.bufferPool / 1024 ** 2).toFixed(0)} MB, redo log ${(facts.redoLog / 1024 ** 2).toFixed(0)} MB, table caches ${facts.tableCache.toLocaleString('en-US')})`,
      bufferPoolBytes: facts.bufferPool,
      pid: null,
      stop: () => Promise.resolve(),
    };
  }
  const url = `mysql://root:bench@127.0.0.1:${await freePort()}/mysql`;
  const dataDir = path.join(REPO_ROOT, '.data', 'bench', 'mysql');
  log(`starting a private MariaDB (data in ${path.relative(REPO_ROOT, dataDir)})`);
  const handle: LocalMysqlHandle | null = await ensureLocalMysql(url, createLogger('bench', 'warn'), { dataDir, startTimeoutMs: 120_000 });
  if (!handle) throw new Error(`something already answers at ${url}`);
  await sizeLikeProduction(url, {
    bufferPoolBytes: parseBytes(process.env.BENCH_BUFFER_POOL || '4G'),
    redoLogBytes: parseBytes(process.env.BENCH_REDO_LOG || '1G'),
    tableCache: envInt('BENCH_TABLE_CACHE', 25_000),
  });
  const facts = await serverFacts(url);
  return {
    url,
    description:
      `private MariaDB ${facts.version} (MariaDB defaults, innodb_buffer_pool_size ${(facts.bufferPool / 1024 ** 3).toFixed(1)} GB, ` +
      `innodb_log_file_size ${(facts.redoLog / 1024 ** 3).toFixed(1)} GB, table caches ${facts.tableCache.toLocaleString('en-US')})`,
    bufferPoolBytes: facts.bufferPool,
    pid: handle.pid,
    stop: () => handle.stop(),
  };
}

/**
 * A benchmark's entry point: runs it on a server of its own, prints its Markdown, and stops the server
 * whatever happened.
 */
export async function runOnBenchServer(bench: (server: BenchServer) => Promise<{ markdown: string }>): Promise<void> {
  const server = await startBenchServer(log);
  try {
    const r = await bench(server);
    process.stdout.write(`${r.markdown}\n`);
  } finally {
    await server.stop();
  }
}
