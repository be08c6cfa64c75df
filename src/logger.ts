import pino, { type Logger } from 'pino';

/** Structured JSON logs; pretty-printed when a person is watching the terminal. */
export function createLogger(name: string, level = process.env.LOG_LEVEL || 'info'): Logger {
  const pretty = process.stdout.isTTY && process.env.LOG_FORMAT !== 'json';
  return pino({
    name,
    level,
    ...(pretty ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } } : {}),
  });
}

export type { Logger };
