/** A whole number from the environment (bench sizes and counts), or `fallback` when unset or not a whole number of at least `min`. */
export function envInt(name: string, fallback: number, min = 1): number {
  const n = Number.parseInt(process.env[name] ?? '', 10);
  return Number.isSafeInteger(n) && n >= min ? n : fallback;
}
