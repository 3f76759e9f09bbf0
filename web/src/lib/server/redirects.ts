/**
 * Where the portal may send a browser on a user-supplied target (the `next`
 * of /login). Prefix checks on the raw string are not enough: browsers drop
 * tabs and newlines and read `\` as `/` when they resolve a Location, so
 * `/\t/evil.example` left the site. The target is resolved with the URL
 * parser (the browser's own rules) against the portal's origin and followed
 * only when it stays there; the redirect then carries only path, query and
 * hash.
 */

/** `next` as a same-origin path + query + hash, or `fallback` when it is missing or leads anywhere else. */
export function sameOriginTarget(next: string | null | undefined, portal: URL, fallback = '/instances'): string {
	if (!next) return fallback;
	let target: URL;
	try {
		target = new URL(next, portal);
	} catch {
		return fallback;
	}
	if (target.origin !== portal.origin) return fallback;
	const local = target.pathname + target.search + target.hash;
	// Dot segments can leave a path starting with `//` (`/.//evil.example`), which a browser reads as another host:
	// keep only what resolves back to the very same URL.
	return new URL(local, portal).href === target.href ? local : fallback;
}
