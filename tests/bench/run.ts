/**
 * `npm run bench [-- --quick] [-- name...]`: runs every tests/bench/<area>.ts
 * (each exports `bench({quick})` returning rows) and prints one table of
 * figure, baseline measured in the same run, and their ratio. Nothing here
 * asserts on time: the figures are for people to read and compare.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export type BenchRow = { name: string; value: string; baseline?: string; ratio?: string };
export type Bench = (opts: { quick: boolean }) => Promise<BenchRow[]>;

const quick = process.argv.includes('--quick');
const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const dir = path.dirname(new URL(import.meta.url).pathname);
const files = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.startsWith('_'))
  .filter((f) => only.length === 0 || only.includes(path.basename(f, '.ts')))
  .sort();

// Figures only compare within one run on one machine: say which machine, and how busy it was.
const gb = (b: number) => `${(b / 2 ** 30).toFixed(1)} GB`;
process.stdout.write(
  `machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), ${gb(os.totalmem())} memory (${gb(os.freemem())} free), Node ${process.version}, ${os.platform()} ${os.release()}, load average ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}\n\n`,
);

const rows: (BenchRow & { area: string })[] = [];
for (const f of files) {
  const area = path.basename(f, '.ts');
  process.stderr.write(`bench ${area}${quick ? ' (quick)' : ''}...\n`);
  try {
    const mod = (await import(pathToFileURL(path.join(dir, f)).href)) as { bench: Bench };
    for (const r of await mod.bench({ quick })) rows.push({ area, ...r });
  } catch (err) {
    rows.push({ area, name: 'FAILED', value: String((err as Error).message ?? err).slice(0, 120) });
  }
}

const header = ['area', 'figure', 'value', 'baseline', 'ratio'];
const table = [header, ...rows.map((r) => [r.area, r.name, r.value, r.baseline ?? '', r.ratio ?? ''])];
const widths = header.map((_, i) => Math.max(...table.map((row) => row[i].length)));
for (const [i, row] of table.entries()) {
  process.stdout.write(
    row
      .map((c, j) => c.padEnd(widths[j]))
      .join('  ')
      .trimEnd() + '\n',
  );
  if (i === 0) process.stdout.write(widths.map((w) => '-'.repeat(w)).join('  ') + '\n');
}
process.exit(rows.some((r) => r.name === 'FAILED') ? 1 : 0);
