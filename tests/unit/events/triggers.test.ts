/** The routing-table loader: defaults, and start-up errors naming the row and field. */
import { describe, expect, it } from 'vitest';
import { backoffMs, isoDurationMs, loadTriggers, TriggersError } from '@saasodoo/events/triggers';

const exists = (fn: string) => ['provision', 'email'].includes(fn);
const row = (extra = '') => `triggers:\n  - name: provision-on-provision\n    filter:\n      attributes:\n        type: com.saasodoo.instance.provision\n    subscriber: provision\n${extra}`;

describe('triggers.yaml loader', () => {
  it('loads the real file', () => {
    expect(Array.isArray(loadTriggers())).toBe(true);
  });

  it('fills Knative-like defaults', () => {
    const [t] = loadTriggers({ text: row(), functionExists: exists });
    expect(t.delivery).toEqual({ retry: 5, backoffPolicy: 'exponential', backoffDelay: 'PT0.5S', timeout: 'PT30S' });
    expect(t.parallelism).toBe(1);
    expect(loadTriggers({ text: 'triggers:\n', functionExists: exists })).toEqual([]);
  });

  it('refuses an unknown subscriber or event type, naming the row', () => {
    const text = `triggers:\n  - name: a\n    filter: {attributes: {type: com.saasodoo.nope}}\n    subscriber: ghost\n`;
    expect(() => loadTriggers({ text, functionExists: exists })).toThrow(TriggersError);
    try {
      loadTriggers({ text, functionExists: exists });
    } catch (err) {
      const msg = (err as Error).message;
      expect(msg).toContain('row 1 (a): subscriber: no function named ghost');
      expect(msg).toContain('filter.attributes.type: com.saasodoo.nope is not in the event catalogue');
    }
  });

  it('refuses bad shapes, durations and duplicate names', () => {
    expect(() => loadTriggers({ text: row('    delivery:\n      backoffDelay: 5s\n'), functionExists: exists })).toThrow(/delivery.backoffDelay: must be an ISO-8601 duration/);
    expect(() => loadTriggers({ text: row('    parallelism: 0\n'), functionExists: exists })).toThrow(/parallelism/);
    expect(() => loadTriggers({ text: row('    color: red\n'), functionExists: exists })).toThrow(/color/);
    expect(() => loadTriggers({ text: row() + row().replace('triggers:\n', ''), functionExists: exists })).toThrow(/duplicate trigger name/);
    expect(() => loadTriggers({ text: 'routes: []', functionExists: exists })).toThrow(/triggers:/);
  });

  it('computes ISO-8601 durations and Knative backoff', () => {
    expect(isoDurationMs('PT0.5S')).toBe(500);
    expect(isoDurationMs('PT2M')).toBe(120_000);
    expect(isoDurationMs('P1DT1H')).toBe(90_000_000);
    expect(isoDurationMs('5s')).toBeUndefined();
    expect(isoDurationMs('PT')).toBeUndefined();
    const t = { delivery: { retry: 3, backoffPolicy: 'exponential' as const, backoffDelay: 'PT1S', timeout: 'PT1S' } };
    expect([1, 2, 3].map((n) => backoffMs(t, n))).toEqual([2000, 4000, 8000]);
    expect([1, 2, 3].map((n) => backoffMs({ delivery: { ...t.delivery, backoffPolicy: 'linear' } }, n))).toEqual([1000, 2000, 3000]);
  });
});
