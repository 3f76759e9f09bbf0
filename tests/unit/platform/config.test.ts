import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, repoRoot } from '@saasodoo/platform/config';

describe('config', () => {
  it('defaults make a local start work', () => {
    const c = loadConfig({});
    expect(c.GATEWAY_PORT).toBe(8080);
    expect(c.REDIS_URL).toBe('redis://127.0.0.1:6379');
    expect(c.TEST_PLANS).toBe(false);
  });

  it('names every bad variable', () => {
    try {
      loadConfig({ GATEWAY_PORT: 'eighty', REDIS_URL: 'not a url' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const vars = (err as ConfigError).issues.map((i) => i.variable).sort();
      expect(vars).toEqual(['GATEWAY_PORT', 'REDIS_URL']);
    }
  });

  it('a bad variable stops start-up with its name in the message', () => {
    const r = spawnSync(process.execPath, ['platform/bin/platform.js', 'up'], {
      cwd: repoRoot,
      env: { ...process.env, GATEWAY_PORT: 'not-a-port' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('GATEWAY_PORT');
  }, 70_000);
});
