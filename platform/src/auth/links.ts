/** Links sent by mail point at the portal (PUBLIC_URL), which posts the token to the API. */
import { config } from '../config.ts';

export function portalLink(pathname: '/verify-email' | '/reset-password', token: string): string {
  return `${config().PUBLIC_URL.replace(/\/+$/, '')}${pathname}?token=${encodeURIComponent(token)}`;
}
