/** The capacity model's arithmetic (bench/capacityModel.ts): sized cores drain the backlog within the window. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { simulate, sizeFor, type Costs, type Platform } from '../../bench/capacityModel';

const costs: Costs = { worker: 0.1, temporal: 0.12, mysql: 0.03, historyEvents: 40, eventsPerMysqlCore: 5_000 };
const platform: Platform = {
  messages: 10_000_000,
  eventsPerSecond: 50_000,
  ttlDays: 90,
  backlogFraction: 0.8,
  drainDays: 7,
  targetUse: 0.5,
};

describe('capacity model', () => {
  it('sizes each kind of core for the backlog plus the steady expiries, and MySQL for ingestion too', () => {
    const s = sizeFor(platform, costs);
    const rate = 8_000_000 / (7 * 86_400) + 10_000_000 / (90 * 86_400);
    assert.equal(s.workerCores, Math.ceil((rate * 0.1) / 0.5));
    assert.equal(s.temporalCores, Math.ceil((rate * 0.12) / 0.5));
    assert.equal(s.ingestionMysqlCores, 10);
    assert.equal(s.mysqlCores, Math.ceil((10 + rate * 0.03) / 0.5));
  });

  it('drains the backlog within the window with those cores, and never with too few', () => {
    const s = sizeFor(platform, costs);
    const out = simulate(platform, costs, s);
    assert.ok(out.hoursToDrain <= 7 * 24, `${out.hoursToDrain} hours`);
    assert.ok(out.steadyUse.worker < 1 && out.steadyUse.temporal < 1 && out.steadyUse.mysql < 1);
    // Temporal's cores below what the steady expiries alone need: the backlog only grows.
    assert.equal(simulate(platform, costs, { ...s, temporalCores: 0.1 }).hoursToDrain, Infinity);
  });
});
