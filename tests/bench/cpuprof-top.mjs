/**
 * Summarises a V8 .cpuprofile (from BENCH_CPUPROF=dir npm run bench, or node --cpu-prof):
 * CPU time outside (idle), and the top functions and modules by self time, in % of samples.
 * Usage: node tests/bench/cpuprof-top.mjs <file.cpuprofile> [top=25] [requests, for CPU per request]
 */
import fs from 'node:fs';
const [file, nArg] = process.argv.slice(2);
const top = Number(nArg ?? 25);
const p = JSON.parse(fs.readFileSync(file, 'utf8'));
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const self = new Map();
const counts = new Map();
for (const s of p.samples) counts.set(s, (counts.get(s) ?? 0) + 1);
const total = p.samples.length;
const key = (n) => {
  const f = n.callFrame;
  const url = (f.url || '')
    .replace(/^file:\/\//, '')
    .replace(/.*node_modules\//, 'nm/')
    .replace(/.*\/(h23|work)\//, '');
  return `${f.functionName || '(anon)'} ${url}${url ? ':' + (f.lineNumber + 1) : ''}`;
};
const byFile = new Map();
for (const [id, c] of counts) {
  const n = byId.get(id);
  const k = key(n);
  self.set(k, (self.get(k) ?? 0) + c);
  let u = (n.callFrame.url || n.callFrame.functionName)
    .replace(/^file:\/\//, '')
    .replace(/.*node_modules\//, 'nm/')
    .replace(/.*\/(h23|work)\//, '');
  if (u.startsWith('nm/'))
    u = u
      .split('/')
      .slice(0, u.split('/')[1].startsWith('@') ? 3 : 2)
      .join('/');
  byFile.set(u, (byFile.get(u) ?? 0) + c);
}
// CPU time (not idle, not waiting for the CPU to be given back): the sum of the sample intervals outside (idle).
let busyUs = 0;
p.samples.forEach((id, i) => {
  if (byId.get(id).callFrame.functionName !== '(idle)') busyUs += p.timeDeltas[i] ?? 0;
});
const pct = (c) => ((100 * c) / total).toFixed(1).padStart(5) + '%';
console.log(`${file}: ${total} samples, ${((p.endTime - p.startTime) / 1e6).toFixed(1)} s`);
console.log(`busy ${(busyUs / 1000).toFixed(0)} ms${process.argv[4] ? `, ${(busyUs / Number(process.argv[4])).toFixed(0)} us per request (${process.argv[4]} requests)` : ''}`);
console.log('-- top self time (functions)');
for (const [k, c] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(pct(c), k);
console.log('-- self time by module');
for (const [k, c] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(pct(c), k);
