import { describe, expect, it } from 'vitest';
import { applyRetention, isoWeekKey } from '@saasodoo/platform/runtime/retention';
import type { BackupKind } from '@saasodoo/platform/runtime/types';

type B = { backupId: string; time: string; kind: BackupKind; keepUntil?: string };
const DAY = 86_400_000;
const now = new Date('2026-06-30T12:00:00Z');

/** One daily backup at 02:00 UTC for each of the last `days` days. */
function dailies(days: number): B[] {
  return Array.from({ length: days }, (_, i) => {
    const t = new Date(Date.UTC(2026, 5, 30, 2) - i * DAY);
    return { backupId: `d${i}`, time: t.toISOString(), kind: 'daily' as const };
  });
}

describe('retention (7 daily, 4 weekly, 3 monthly)', () => {
  it('keeps everything while there are 7 or fewer', () => {
    const { keep, remove } = applyRetention(dailies(7), undefined, now);
    expect(keep).toHaveLength(7);
    expect(remove).toEqual([]);
  });

  it('over a year of dailies keeps 7 days + the newest of 4 weeks + of 3 months', () => {
    const all = dailies(400);
    const { keep, remove } = applyRetention(all, undefined, now);
    expect(keep.length + remove.length).toBe(400);
    const kept = new Set(keep.map((b) => b.backupId));
    for (let i = 0; i < 7; i++) expect(kept.has(`d${i}`)).toBe(true);
    // The 3 months: June (d0), May 31 (d30), April 30 (d61).
    expect(kept.has('d30')).toBe(true);
    expect(kept.has('d61')).toBe(true);
    // Nothing older than the third month survives.
    expect(keep.every((b) => Date.parse(b.time) >= Date.parse('2026-04-01'))).toBe(true);
    // Distinct weeks among the kept ones cover the 4 newest ISO weeks.
    const weeks = new Set(keep.map((b) => isoWeekKey(new Date(b.time))));
    for (const w of ['2026-W27', '2026-W26', '2026-W25', '2026-W24']) expect(weeks.has(w)).toBe(true);
    expect(keep.length).toBeLessThanOrEqual(7 + 4 + 3);
  });

  it('several backups on one day: only the newest counts for that day', () => {
    const same: B[] = [
      { backupId: 'a', time: '2026-06-30T01:00:00Z', kind: 'daily' },
      { backupId: 'b', time: '2026-06-30T09:00:00Z', kind: 'manual' },
      { backupId: 'c', time: '2026-06-30T05:00:00Z', kind: 'safety' },
    ];
    const { keep, remove } = applyRetention(same, { daily: 1, weekly: 0, monthly: 0 }, now);
    expect(keep.map((b) => b.backupId)).toEqual(['b']);
    expect(remove.map((b) => b.backupId).sort()).toEqual(['a', 'c']);
  });

  it('final backups are kept 30 days whatever the policy, then removed', () => {
    const finals: B[] = [
      { backupId: 'f-new', time: new Date(now.getTime() - 10 * DAY).toISOString(), kind: 'final' },
      { backupId: 'f-old', time: new Date(now.getTime() - 31 * DAY).toISOString(), kind: 'final' },
      { backupId: 'f-explicit', time: new Date(now.getTime() - 60 * DAY).toISOString(), kind: 'final', keepUntil: new Date(now.getTime() + DAY).toISOString() },
    ];
    const { keep, remove } = applyRetention(finals, { daily: 0, weekly: 0, monthly: 0 }, now);
    expect(keep.map((b) => b.backupId).sort()).toEqual(['f-explicit', 'f-new']);
    expect(remove.map((b) => b.backupId)).toEqual(['f-old']);
  });

  it('never deletes a backup whose time it cannot read', () => {
    const { keep } = applyRetention([{ backupId: 'x', time: 'garbage', kind: 'daily' }], { daily: 0, weekly: 0, monthly: 0 }, now);
    expect(keep).toHaveLength(1);
  });

  it('ISO weeks across a year boundary', () => {
    expect(isoWeekKey(new Date('2026-01-01T00:00:00Z'))).toBe('2026-W01');
    expect(isoWeekKey(new Date('2027-01-01T00:00:00Z'))).toBe('2026-W53');
    expect(isoWeekKey(new Date('2024-12-30T00:00:00Z'))).toBe('2025-W01');
  });
});
