#!/usr/bin/env node
// Runs the `platform` CLI from its esbuild bundle (rebuilt first when a
// source changed; see host-bundle.mjs): no TypeScript loader, so the host
// and every command start in a fraction of the time tsx takes.
import { hostBundle } from './host-bundle.mjs';

const file = await hostBundle('cli', 'platform/src/cli.ts');
await import(file);
