/** The operator listener's settings (issue 15.1): its own loopback port and a token of at least 16 characters. */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '@saasodoo/platform/config';

describe('operator listener config', () => {
  it('defaults to port 8084 and a generated token (none in the environment)', () => {
    const c = loadConfig({});
    expect(c.OPERATOR_PORT).toBe(8084);
    expect(c.OPERATOR_TOKEN).toBeUndefined();
  });

  it('names a bad OPERATOR_PORT and a short OPERATOR_TOKEN', () => {
    try {
      loadConfig({ OPERATOR_PORT: '70000', OPERATOR_TOKEN: 'short' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).issues.map((i) => i.variable).sort()).toEqual(['OPERATOR_PORT', 'OPERATOR_TOKEN']);
    }
  });
});
