/** The forecast's window, `30d`, `2 weeks` or `3 months` from now, as its end; at most five years. */
import { addDuration, parseDuration } from '../shared/duration';
import { InvalidInputError } from '../shared/validation';

const LONGEST_MONTHS = 60;

export function windowEnd(text: string, now = new Date()): Date {
  let d;
  try {
    d = parseDuration(text);
  } catch (err) {
    throw new InvalidInputError(`within ${JSON.stringify(text)}: ${(err as Error).message}`);
  }
  if (d.months === 0 && d.milliseconds <= 0)
    throw new InvalidInputError(`within ${JSON.stringify(text)} is not a window: give e.g. 30d or 3 months`);
  const end = addDuration(now, d);
  if (end.getTime() > addDuration(now, { months: LONGEST_MONTHS, milliseconds: 0, text: '' }).getTime()) {
    throw new InvalidInputError(`within ${JSON.stringify(text)} is longer than ${LONGEST_MONTHS / 12} years`);
  }
  return end;
}
