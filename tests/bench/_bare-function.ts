/**
 * The baseline of the API and cold-start benches: a faas-js-runtime function
 * that does nothing (answers `{"items":[]}`), run by the platform's own
 * runner so only the work of a real function differs. `PORT` sets the port.
 */
import { startFunction } from '@saasodoo/platform/host/run-function';

await startFunction({ handle: async () => ({ statusCode: 200, headers: { 'content-type': 'application/json' }, body: { items: [] } }) }, Number(process.env.PORT ?? 8080));
