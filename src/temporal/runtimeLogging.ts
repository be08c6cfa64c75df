import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import type { Logger } from '../logger';

const PINO_LEVEL: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};
const SDK_LEVEL: Record<string, LogLevel> = { trace: 'TRACE', debug: 'DEBUG', info: 'INFO', warn: 'WARN', error: 'ERROR' };

let installed = false;

/**
 * Sends the SDK's own logs (worker state, workflow `log.*`, activity context logs) through our pino
 * logger so one process writes one structured stream. The SDK allows one runtime per process.
 */
export function installRuntimeLogging(log: Logger, level: string, sdkMetricsAddress: string | null = null): void {
  if (installed) return;
  installed = true;
  const sdkLevel = SDK_LEVEL[level] ?? 'INFO';
  Runtime.install({
    logger: new DefaultLogger(sdkLevel, (entry) => {
      log[PINO_LEVEL[entry.level]]({ ...entry.meta }, entry.message);
    }),
    // The SDK's own worker metrics (task slots, poll and schedule-to-start latencies, cache) on an exporter of its own.
    ...(sdkMetricsAddress
      ? { telemetryOptions: { metrics: { prometheus: { bindAddress: sdkMetricsAddress, countersTotalSuffix: true } } } }
      : {}),
  });
}
