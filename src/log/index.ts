/**
 * Process-wide logger for the daemons (store, agent). Logs go to stderr (stdout
 * is for command output): JSON lines when stderr is not a terminal, so a
 * collector can parse them; readable lines on a terminal. Level from
 * HUSH_LOG_LEVEL. Never pass a secret value to it: log names, ids and versions.
 */
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

const destination = process.stderr.isTTY
  ? pretty({ destination: 2, sync: true, ignore: 'pid,hostname', translateTime: 'SYS:HH:MM:ss' })
  : pino.destination({ dest: 2, sync: true });

export const log: Logger = pino(
  {
    level: process.env.HUSH_LOG_LEVEL ?? 'info',
    base: { pid: process.pid },
    // Belt and braces: if a record ever carries these fields, they are censored.
    redact: { paths: ['data', 'value', 'plaintext', 'token', '*.data', '*.value', '*.token'], censor: '[redacted]' },
  },
  destination,
);
