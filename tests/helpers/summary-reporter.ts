/**
 * Ends a run with one plain line, `tests: N passed, N failed, N skipped`,
 * that CI systems not knowing vitest's own summary can read, after the
 * slowest files of the run (import + tests and hooks): the CI time budget
 * is tight, and this says where it goes without another profiling run.
 */
import type { Reporter, TestModule } from 'vitest/node';

export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    const count = { passed: 0, failed: 0, skipped: 0 };
    for (const m of modules) {
      let failedHere = 0;
      for (const t of m.children.allTests()) {
        const state = t.result().state;
        if (state === 'passed') count.passed++;
        else if (state === 'failed') failedHere++;
        else count.skipped++;
      }
      // A file that failed to load, or whose hook failed (its tests then show as skipped), is a failure too.
      if (m.state() === 'failed' && failedHere === 0) failedHere = 1;
      count.failed += failedHere;
    }
    count.failed += unhandledErrors.length;
    const slowest = modules
      .map((m) => ({ file: m.moduleId.replace(`${process.cwd()}/`, ''), ms: m.diagnostic().collectDuration + m.diagnostic().duration }))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 12);
    if (modules.length > 1) {
      process.stdout.write(`\nslowest files (import + tests):\n${slowest.map((x) => `  ${(x.ms / 1000).toFixed(1).padStart(6)} s  ${x.file}`).join('\n')}\n`);
    }
    process.stdout.write(`\ntests: ${count.passed} passed, ${count.failed} failed, ${count.skipped} skipped\n`);
  }
}
