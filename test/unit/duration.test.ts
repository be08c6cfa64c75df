import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addDuration, parseDuration } from '../../src/shared/duration';

describe('durations', () => {
  it('parses the forms operators type', () => {
    assert.deepEqual(parseDuration('3 months'), { months: 3, milliseconds: 0, text: '3 months' });
    assert.equal(parseDuration('1 day').milliseconds, 86_400_000);
    assert.equal(parseDuration('30 seconds').milliseconds, 30_000);
    assert.equal(parseDuration('90s').milliseconds, 90_000);
    assert.equal(parseDuration('1 hour 30 minutes').milliseconds, 5_400_000);
    assert.equal(parseDuration('1 year').months, 12);
  });

  it('refuses what it cannot read', () => {
    for (const bad of ['', 'soon', '3', 'three months', '3 fortnights', '0 days', '-1 day', '3 months later']) {
      assert.throws(() => parseDuration(bad), /duration/, bad);
    }
  });

  it('adds calendar months, clamping to the end of shorter months', () => {
    const add = (iso: string, d: string) => addDuration(new Date(iso), parseDuration(d)).toISOString();
    assert.equal(add('2026-01-15T10:00:00.000Z', '3 months'), '2026-04-15T10:00:00.000Z');
    assert.equal(add('2026-11-30T23:59:59.999Z', '3 months'), '2027-02-28T23:59:59.999Z');
    assert.equal(add('2027-11-30T00:00:00.000Z', '3 months'), '2028-02-29T00:00:00.000Z');
    assert.equal(add('2026-08-31T12:00:00.000Z', '1 month'), '2026-09-30T12:00:00.000Z');
    assert.equal(add('2026-03-29T00:30:00.000Z', '1 day'), '2026-03-30T00:30:00.000Z');
  });
});
