/**
 * How much is hot and how much archived: messages by state, and hot and archived rows and bytes by
 * kind, by tag and by month of expiry. Hot figures come from src/reports/hotFootprint.ts (own tables
 * from InnoDB's statistics, shared tables counted); archived ones from the archive manifests.
 */
import type { Db } from '../db/knex';
import { LIFECYCLE_STATES, type LifecycleState, type MessageKind } from '../shared/types';
import { allFootprints, messageKey, type Footprint } from './hotFootprint';

export interface StorageFigures {
  messages: number;
  hotRows: number;
  hotBytes: number;
  archivedRows: number;
  archivedBytes: number;
}

export interface StorageReport {
  generatedAt: string;
  byState: Record<LifecycleState, number>;
  total: StorageFigures;
  byKind: ({ kind: MessageKind } & StorageFigures)[];
  /** A message with several tags counts under each. */
  byTag: ({ tag: string } & StorageFigures)[];
  /**
   * By the month the data expires (stopped, retained: the deadline) or expired (archiving, expired,
   * restoring: when its last generation was archived); `none` for active messages.
   */
  byExpiryMonth: ({ month: string } & StorageFigures)[];
}

const empty = (): StorageFigures => ({ messages: 0, hotRows: 0, hotBytes: 0, archivedRows: 0, archivedBytes: 0 });

function addTo(into: Map<string, StorageFigures>, key: string, hot: Footprint, archived: Footprint): void {
  const f = into.get(key) ?? empty();
  f.messages += 1;
  f.hotRows += hot.rows;
  f.hotBytes += hot.bytes;
  f.archivedRows += archived.rows;
  f.archivedBytes += archived.bytes;
  into.set(key, f);
}

export async function storageReport(db: Db, now = new Date()): Promise<StorageReport> {
  const [hot, archivedRows, availability, tagRows] = await Promise.all([
    allFootprints(db),
    db('archive_manifests')
      .where({ status: 'archived' })
      .groupBy('message_kind', 'message_id')
      .select<{ kind: MessageKind; id: string; rows: number | string; bytes: number | string; at: Date | null }[]>(
        'message_kind as kind',
        'message_id as id',
        db.raw('SUM(row_count) as `rows`'),
        db.raw('SUM(compressed_bytes) as bytes'),
        db.raw('MAX(archived_at) as `at`'),
      ),
    db('message_availability').select<{ kind: MessageKind; id: string; state: LifecycleState; expires_at: Date | null }[]>(
      'kind',
      'message_id as id',
      'state',
      'expires_at',
    ),
    db('message_tags').select<{ kind: MessageKind; id: string; tag: string }[]>('kind', 'message_id as id', 'tag'),
  ]);
  const archived = new Map<string, { rows: number; bytes: number; at: Date | null }>();
  for (const a of archivedRows) archived.set(messageKey(a.kind, a.id), { rows: Number(a.rows), bytes: Number(a.bytes), at: a.at });
  const tags = new Map<string, string[]>();
  for (const t of tagRows) tags.set(messageKey(t.kind, t.id), [...(tags.get(messageKey(t.kind, t.id)) ?? []), t.tag]);

  const byState = Object.fromEntries(LIFECYCLE_STATES.map((s) => [s, 0])) as Record<LifecycleState, number>;
  const byKind = new Map<string, StorageFigures>();
  const byTag = new Map<string, StorageFigures>();
  const byMonth = new Map<string, StorageFigures>();
  const total = new Map<string, StorageFigures>();
  const none: Footprint = { rows: 0, bytes: 0 };
  for (const m of availability) {
    const key = messageKey(m.kind, m.id);
    const h = hot.get(key) ?? none;
    const a = archived.get(key);
    const arch: Footprint = a ? { rows: a.rows, bytes: a.bytes } : none;
    byState[m.state] = (byState[m.state] ?? 0) + 1;
    addTo(total, 'all', h, arch);
    addTo(byKind, m.kind, h, arch);
    for (const tag of tags.get(key) ?? []) addTo(byTag, tag, h, arch);
    const when = m.state === 'stopped' || m.state === 'retained' ? m.expires_at : m.state === 'active' ? null : (a?.at ?? null);
    addTo(byMonth, when ? new Date(when).toISOString().slice(0, 7) : 'none', h, arch);
  }
  const sorted = <K extends string>(m: Map<string, StorageFigures>, name: K) =>
    [...m.entries()]
      .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))
      .map(([k, f]) => ({ [name]: k, ...f }) as { [P in K]: string } & StorageFigures);
  return {
    generatedAt: now.toISOString(),
    byState,
    total: total.get('all') ?? empty(),
    byKind: sorted(byKind, 'kind') as ({ kind: MessageKind } & StorageFigures)[],
    byTag: sorted(byTag, 'tag'),
    byExpiryMonth: sorted(byMonth, 'month'),
  };
}
