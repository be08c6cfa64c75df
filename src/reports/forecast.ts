/**
 * What will expire within a window, and what is retained and by which audiences: the answer to "what
 * moves to long-term storage next month, and how much". Read from the availability rows the actors
 * keep (`message_availability`), the registry of hot tables and the audiences; nothing is changed.
 */
import type { Db } from '../db/knex';
import type { MessageKind, ReferencingAudience } from '../shared/types';
import { findActiveReferences } from '../storage/references';
import { messageFootprint } from './hotFootprint';

export interface ForecastQuery {
  /** The window's end; it starts now. */
  until: Date;
  now?: Date;
  tag?: string;
  kind?: MessageKind;
  /** At most this many messages listed in each part (the earliest first); totals cover those listed. */
  limit: number;
}

export interface ForecastItem {
  kind: MessageKind;
  id: string;
  name: string | null;
  /** The expiry (stopped) or the next count of references (retained). */
  at: string;
  hotRows: number;
  hotBytes: number;
  /** Active audiences filtering on it now: with any, it is retained at `at` instead of moving. */
  activeReferences: number;
  audiences: ReferencingAudience[];
}

export interface Forecast {
  from: string;
  until: string;
  /** Stopped messages whose expiry falls in the window: they move then unless an audience still filters on them. */
  expiring: ForecastItem[];
  /** Retained messages whose next count falls in the window, with the audiences that keep them now. */
  retained: ForecastItem[];
  totals: { expiring: number; expiringRows: number; expiringBytes: number; keptByAudiences: number; retained: number };
  truncated: boolean;
}

export async function forecast(db: Db, q: ForecastQuery): Promise<Forecast> {
  const now = q.now ?? new Date();
  const due = (state: 'stopped' | 'retained') => {
    const query = db('message_availability as a')
      .leftJoin('messages as m', function () {
        this.on('m.kind', '=', 'a.kind').andOn('m.id', '=', 'a.message_id');
      })
      .where('a.state', state)
      .where('a.expires_at', '<=', q.until)
      .orderBy([{ column: 'a.expires_at' }, { column: 'a.kind' }, { column: 'a.message_id' }])
      .limit(q.limit + 1)
      .select<{ kind: MessageKind; id: string; name: string | null; at: Date }[]>(
        'a.kind',
        'a.message_id as id',
        'm.name',
        'a.expires_at as at',
      );
    if (q.kind) query.where('a.kind', q.kind);
    if (q.tag) {
      query.whereExists(function () {
        this.from('message_tags as t')
          .whereRaw('t.kind = a.kind AND t.message_id = a.message_id')
          .where('t.tag', q.tag as string);
      });
    }
    return query;
  };
  const [stopped, retained] = await Promise.all([due('stopped'), due('retained')]);
  const truncated = stopped.length > q.limit || retained.length > q.limit;
  const describe = async (rows: typeof stopped): Promise<ForecastItem[]> => {
    const out: ForecastItem[] = [];
    for (const r of rows.slice(0, q.limit)) {
      const ref = { kind: r.kind, id: r.id };
      const [footprint, refs] = await Promise.all([messageFootprint(db, ref), findActiveReferences(db, ref)]);
      out.push({
        ...ref,
        name: r.name ?? null,
        at: new Date(r.at).toISOString(),
        hotRows: footprint.rows,
        hotBytes: footprint.bytes,
        activeReferences: refs.count,
        audiences: refs.audiences,
      });
    }
    return out;
  };
  const expiring = await describe(stopped);
  const kept = await describe(retained);
  const moving = expiring.filter((e) => e.activeReferences === 0);
  return {
    from: now.toISOString(),
    until: q.until.toISOString(),
    expiring,
    retained: kept,
    totals: {
      expiring: expiring.length,
      expiringRows: moving.reduce((n, e) => n + e.hotRows, 0),
      expiringBytes: moving.reduce((n, e) => n + e.hotBytes, 0),
      keptByAudiences: expiring.length - moving.length,
      retained: kept.length,
    },
    truncated,
  };
}
