/**
 * Process helpers for benchmarks: memory of a child read from /proc (what the kernel charges it, not
 * what V8 reports), machine load, and running a command to completion with its wall time.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';

export interface MemorySample {
  /** Resident set size now, bytes. */
  rss: number;
  /** Peak resident set size over the process's life so far (VmHWM), bytes. */
  hwm: number;
}

/** VmRSS and VmHWM of a live process; null once it has gone. */
export function readMemory(pid: number): MemorySample | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/**
 * Polls a process's memory. VmHWM alone would be enough for the peak, but the samples also show
 * whether memory is flat over a long move or grows with it.
 */
export class MemorySampler {
  private timer: NodeJS.Timeout | null = null;
  peakRss = 0;
  hwm = 0;
  samples = 0;

  constructor(
    private readonly pid: number,
    private readonly everyMs = 100,
  ) {}

  start(): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.everyMs);
    return this;
  }

  sample(): void {
    const m = readMemory(this.pid);
    if (!m) return;
    this.samples += 1;
    this.peakRss = Math.max(this.peakRss, m.rss);
    this.hwm = Math.max(this.hwm, m.hwm);
  }

  /**
   * Starts a new measurement period: the sampled peak and the kernel's own high-water mark (VmHWM, reset
   * by writing 5 to /proc/<pid>/clear_refs) both restart from the current RSS, so that the peak of a
   * phase is not the peak of the process's start-up (bundling the workflow code costs more than moving
   * rows does).
   */
  resetPeak(): void {
    try {
      writeFileSync(`/proc/${this.pid}/clear_refs`, '5');
    } catch {
      // Not allowed or not Linux: VmHWM then stays the whole life's peak, which only overstates.
    }
    this.peakRss = 0;
    this.hwm = 0;
    this.sample();
  }

  stop(): { peakRss: number; hwm: number; samples: number } {
    this.sample();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    return { peakRss: this.peakRss, hwm: this.hwm, samples: this.samples };
  }
}

/**
 * CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. On a shared machine
 * this is the steadier measure of work done: wall time also counts waiting for other people's load.
 */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may contain spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime
    return ticks / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

/** CPU seconds of this process's children that have exited and been waited for (cutime + cstime). */
export function exitedChildrenCpuSeconds(): number {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

/** sysconf(_SC_CLK_TCK): 100 on every Linux this runs on. */
const CLOCK_TICKS = 100;

export function loadAverage(): string {
  return os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(', ');
}

/** `uptime` as the shell prints it, so the figures carry the machine's load (shared, 2 cores) with them. */
export function uptimeLine(): string {
  try {
    return execFileSync('uptime', { encoding: 'utf8' }).trim();
  } catch {
    return `load average: ${loadAverage()}`;
  }
}

export interface CommandResult {
  code: number | null;
  seconds: number;
  /** CPU seconds the command itself used (user + system). */
  cpuSeconds: number;
  stdout: string;
  stderr: string;
  peakRss: number;
}

/** Runs a command to completion, timing it and sampling its memory. */
export function runCommand(file: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const cpuBefore = exitedChildrenCpuSeconds();
    const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const sampler = child.pid ? new MemorySampler(child.pid).start() : null;
    child.once('error', reject);
    child.once('close', (code) => {
      const mem = sampler?.stop();
      resolve({
        code,
        seconds: (performance.now() - started) / 1000,
        cpuSeconds: exitedChildrenCpuSeconds() - cpuBefore,
        stdout,
        stderr,
        peakRss: mem?.hwm || mem?.peakRss || 0,
      });
    });
  });
}

export const MB = 1024 * 1024;
export const fmtMB = (bytes: number) => `${(bytes / MB).toFixed(1)} MB`;
export const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');
