import { DAY_MS, type UsageDay } from './model.ts';

/** Filling days without requests is for the chart; a longer range lists only the days that have some. */
const MAX_FILLED_DAYS = 400;

/**
 * Requests per UTC day of [from, to) from the usage statistics grouped by DAY:
 * every day with its counts (zero when none) when the range is short enough to
 * chart, else only the days that have requests.
 *
 * @example
 * usagePerDay(await readUsageStatistics(trx, accountId, { from, to }, ['DAY'], 10_000), from, to);
 */
export function usagePerDay(groups: readonly { day: Date | null; count: number; failures: number; denied: number }[], from: Date, to: Date): UsageDay[] {
  const days = groups.filter((g) => g.day).map((g) => ({ day: g.day!.toISOString().slice(0, 10), count: g.count, failures: g.failures, denied: g.denied }));
  const start = Date.UTC(from.getUTCFullYear(), from.getUTCMonth(), from.getUTCDate());
  const count = Math.ceil((to.getTime() - start) / DAY_MS);
  if (count > MAX_FILLED_DAYS) return days;
  const byDay = new Map(days.map((d) => [d.day, d]));
  return Array.from({ length: count }, (_, i) => {
    const day = new Date(start + i * DAY_MS).toISOString().slice(0, 10);
    return byDay.get(day) ?? { day, count: 0, failures: 0, denied: 0 };
  });
}
