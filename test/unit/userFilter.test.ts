import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildUserFilter, mayHoldUser } from '../../src/archive/userFilter';

describe('chunk user filters', () => {
  it('never misses a user the chunk holds, and lets about one in a hundred others through', () => {
    const users = Array.from({ length: 5_000 }, (_, i) => `user-${i}`);
    const filter = buildUserFilter([...users, null, ...users.slice(0, 100)]);
    for (const u of users) assert.ok(mayHoldUser(filter, u), u);
    let through = 0;
    const others = 100_000;
    for (let i = 0; i < others; i++) if (mayHoldUser(filter, `user-${5_000 + i}`)) through += 1;
    assert.ok(through / others < 0.02, `${through} of ${others} others let through`);
    // About 1.2 bytes per distinct user, whatever the ids look like.
    assert.ok(filter.length < 5_000 * 1.3, `${filter.length} bytes`);
  });

  it('reads any id, unicode included, and answers "maybe" without a filter it knows', () => {
    const ids = ['', 'ünïcødé ✓', '😀', 'a'.repeat(64), "o'brien"];
    const filter = buildUserFilter(ids);
    for (const id of ids) assert.ok(mayHoldUser(filter, id));
    assert.equal(mayHoldUser(buildUserFilter([]), 'anyone'), false);
    assert.ok(mayHoldUser(null, 'anyone'));
    assert.ok(mayHoldUser(Buffer.from([9, 3, 0, 0]), 'anyone'), 'an unknown version');
  });
});
