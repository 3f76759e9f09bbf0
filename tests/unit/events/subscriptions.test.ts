/**
 * events/triggers.yaml against the event functions' `on` maps: each function
 * is subscribed to exactly the types it handles. A row missing means events
 * the function is written for never reach it; a row too many means the
 * broker delivers events the function answers 400 to (dead-lettered).
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadTriggers, triggersFile, type Trigger } from '@saasodoo/events/triggers';
import { functionNames, functionSpec, functionsDir } from '@saasodoo/platform/funcspec';
import type { FaasFunction } from '@saasodoo/platform/fn';

/** Every difference between the routing table and the handlers, one line each. */
function mismatches(triggers: Trigger[], handles: Map<string, string[]>): string[] {
  const out: string[] = [];
  for (const [fn, types] of handles) {
    const routed = new Set(triggers.filter((t) => t.subscriber === fn).map((t) => t.filter.attributes.type));
    for (const t of types) if (!routed.has(t)) out.push(`${fn} handles ${t} but no trigger routes it there`);
    for (const t of routed) if (!types.includes(t)) out.push(`${fn} is routed ${t} but has no handler for it`);
  }
  for (const t of triggers) if (!handles.has(t.subscriber)) out.push(`${t.name}: ${t.subscriber} is not an event function`);
  return out;
}

const handles = new Map<string, string[]>();

beforeAll(async () => {
  for (const name of functionNames().filter((n) => functionSpec(n).invoke === 'cloudevent')) {
    const mod = (await import(pathToFileURL(path.join(functionsDir, name, 'index.ts')).href)) as { default: FaasFunction };
    handles.set(name, mod.default.handles ?? []);
  }
}, 60_000);

describe('events/triggers.yaml subscribes each event function to exactly what its `on` map handles', () => {
  it('finds the event functions and their handlers', () => {
    expect(handles.size).toBeGreaterThan(3);
    for (const [fn, types] of handles) expect(types.length, fn).toBeGreaterThan(0);
  });

  it('the routing table and the handlers agree', () => {
    expect(mismatches(loadTriggers(), handles)).toEqual([]);
  });

  it('a removed row is reported, naming the function and the type', () => {
    const text = fs.readFileSync(triggersFile, 'utf8');
    const triggers = loadTriggers({ text });
    const removed = triggers.find((t) => t.subscriber === 'provision')!;
    const without = triggers.filter((t) => t !== removed);
    expect(mismatches(without, handles)).toEqual([`provision handles ${removed.filter.attributes.type} but no trigger routes it there`]);
  });
});
