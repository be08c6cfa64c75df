/**
 * Calendar-aware durations such as `3 months`, `1 day` or `45s`. Months and years are calendar units
 * (Jan 31 + 1 month = Feb 28/29), as the product promises "three calendar months"; the rest are fixed.
 */
export interface CalendarDuration {
  months: number;
  milliseconds: number;
  text: string;
}

const FIXED_UNITS: Record<string, number> = {
  ms: 1,
  millisecond: 1,
  s: 1_000,
  sec: 1_000,
  second: 1_000,
  m: 60_000,
  min: 60_000,
  minute: 60_000,
  h: 3_600_000,
  hour: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
  w: 604_800_000,
  week: 604_800_000,
};
const MONTH_UNITS: Record<string, number> = { mo: 1, month: 1, y: 12, year: 12 };

export function parseDuration(text: string): CalendarDuration {
  const re = /(\d+)\s*([a-z]+)/gi;
  const trimmed = text.trim();
  let months = 0;
  let milliseconds = 0;
  let consumed = '';
  for (const match of trimmed.matchAll(re)) {
    const amount = Number(match[1]);
    const raw = match[2].toLowerCase();
    const unit = raw.length > 2 && raw.endsWith('s') ? raw.slice(0, -1) : raw;
    if (unit in MONTH_UNITS) months += amount * MONTH_UNITS[unit];
    else if (unit in FIXED_UNITS) milliseconds += amount * FIXED_UNITS[unit];
    else throw new Error(`unknown duration unit "${match[2]}" in "${text}"`);
    consumed += match[0];
  }
  if (!consumed || trimmed.replace(/[\s,]+/g, '') !== consumed.replace(/\s+/g, '') || months + milliseconds <= 0) {
    throw new Error(`invalid duration "${text}": expected e.g. "3 months", "1 day", "30 seconds" or "90s"`);
  }
  return { months, milliseconds, text: trimmed };
}

/** Adds a duration to an instant, stepping months in UTC and clamping to the last day of the month. */
export function addDuration(from: Date, d: CalendarDuration): Date {
  const result = new Date(from.getTime());
  if (d.months > 0) {
    const day = result.getUTCDate();
    result.setUTCDate(1);
    result.setUTCMonth(result.getUTCMonth() + d.months);
    const lastDay = new Date(Date.UTC(result.getUTCFullYear(), result.getUTCMonth() + 1, 0)).getUTCDate();
    result.setUTCDate(Math.min(day, lastDay));
  }
  return new Date(result.getTime() + d.milliseconds);
}

/** The duration's shortest length in milliseconds (a month counted as 28 days), for limits that must not wait longer than it. */
export function shortestMilliseconds(d: CalendarDuration): number {
  return d.months * 28 * 86_400_000 + d.milliseconds;
}
