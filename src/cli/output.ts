/** Printing for people (aligned tables) and for scripts (--format json). */
import { InvalidArgumentError, Option } from 'commander';

export type Format = 'table' | 'json';

export function parseFormat(value: string): Format {
  if (value !== 'table' && value !== 'json') throw new InvalidArgumentError(`must be "table" or "json", not "${value}".`);
  return value;
}

/** `--format table|json`, for every command that prints a list. */
export const formatOption = (): Option => new Option('--format <format>', 'table or json').default('table').argParser(parseFormat);

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

export function printTable(headers: string[], rows: string[][]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('   ');
  process.stdout.write([line(headers), ...rows.map(line)].join('\n') + '\n');
}

/** "3 minutes ago"-style times, like `docker secret ls`. */
export function ago(iso: string, now = Date.now()): string {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  const units: [number, string][] = [
    [86400, 'day'],
    [3600, 'hour'],
    [60, 'minute'],
  ];
  for (const [size, unit] of units) {
    const n = Math.floor(seconds / size);
    if (n >= 1) return `${n} ${unit}${n === 1 ? '' : 's'} ago`;
  }
  return seconds < 2 ? 'just now' : `${seconds} seconds ago`;
}
