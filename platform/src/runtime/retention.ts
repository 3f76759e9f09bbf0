/**
 * Backup retention (platform/src/instances/README.md 4): keep the newest backup of each of the last 7
 * days, 4 ISO weeks and 3 months that have backups (UTC), like borg/restic's
 * `--keep-daily/weekly/monthly`; final backups are kept until their
 * `keepUntil` (30 days) whatever the policy. Pure, so it is unit tested
 * without files.
 */
import type { BackupManifest, RetentionPolicy } from './types.ts';
import { DEFAULT_RETENTION } from './types.ts';

/** Days a final (pre-termination) backup is kept. */
export const FINAL_BACKUP_DAYS = 30;

type Dated = Pick<BackupManifest, 'backupId' | 'time' | 'kind' | 'keepUntil'>;

function dayKey(d: Date): string {
  return d.toISOString().slice(0, 10);
}

function monthKey(d: Date): string {
  return d.toISOString().slice(0, 7);
}

/** ISO 8601 week key, e.g. 2026-W05 (weeks start Monday; week 1 has the year's first Thursday). */
export function isoWeekKey(d: Date): string {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const dow = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - dow);
  const yearStart = Date.UTC(t.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((t.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${t.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}

/**
 * Splits backups into those to keep and those to delete. Backups with an
 * unparseable time are kept (never delete what we cannot reason about).
 */
export function applyRetention<T extends Dated>(backups: readonly T[], policy: RetentionPolicy = DEFAULT_RETENTION, now = new Date()): { keep: T[]; remove: T[] } {
  const keep = new Set<T>();
  const remove: T[] = [];
  const regular: T[] = [];
  for (const b of backups) {
    const time = Date.parse(b.time);
    if (Number.isNaN(time)) keep.add(b);
    else if (b.kind === 'final') {
      const until = b.keepUntil ? Date.parse(b.keepUntil) : time + FINAL_BACKUP_DAYS * 86_400_000;
      until > now.getTime() ? keep.add(b) : remove.push(b);
    } else regular.push(b);
  }
  const newestFirst = [...regular].sort((a, b) => Date.parse(b.time) - Date.parse(a.time));
  const buckets: [number, (d: Date) => string][] = [
    [policy.daily, dayKey],
    [policy.weekly, isoWeekKey],
    [policy.monthly, monthKey],
  ];
  for (const [count, key] of buckets) {
    const seen = new Set<string>();
    for (const b of newestFirst) {
      if (seen.size >= count) break;
      const k = key(new Date(b.time));
      if (seen.has(k)) continue;
      seen.add(k);
      keep.add(b);
    }
  }
  for (const b of newestFirst) if (!keep.has(b)) remove.push(b);
  return { keep: backups.filter((b) => keep.has(b)), remove };
}
