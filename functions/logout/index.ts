/**
 * POST /api/logout (Bearer) → 204. Deletes the session: from this answer on,
 * every function refuses every token of it (access and refresh).
 */
import { route } from '@saasodoo/platform/fn';
import { authFunction } from '@saasodoo/platform/auth/auth-function';
import { endSessions } from '@saasodoo/platform/auth/sessions';

export default authFunction({
  name: 'logout',
  POST: route<undefined, undefined, 'customer'>({
    auth: 'customer',
    handle: async ({ caller, log }) => {
      await endSessions([caller.sessionId]);
      log.info({ userId: caller.userId, sessionId: caller.sessionId }, 'logout');
      return { status: 204 };
    },
  }),
});
