/**
 * A session's user agent as a person recognises it ("Chrome 131 on Windows ·
 * computer"), read with bowser rather than by hand: user-agent strings are a
 * maze of legacy tokens that only a maintained parser gets right.
 */
import Bowser from 'bowser';

const KIND: Record<string, string> = { desktop: 'computer', mobile: 'phone', tablet: 'tablet', tv: 'TV' };

/** Readable browser, system and kind of device; "Unknown device" when the string says nothing we know. */
export function deviceWords(userAgent: string | undefined | null): string {
	if (!userAgent) return 'Unknown device';
	const r = Bowser.parse(userAgent);
	const major = r.browser.version?.split('.')[0];
	const browser = r.browser.name ? `${r.browser.name}${major ? ` ${major}` : ''}` : undefined;
	const os = r.os.name ? `${r.os.name}${r.os.versionName ? ` ${r.os.versionName}` : ''}` : undefined;
	const kind = r.platform.type ? KIND[r.platform.type] : undefined;
	if (!browser && !os) return 'Unknown device';
	return [[browser ?? 'A browser', os].filter(Boolean).join(' on '), kind].filter(Boolean).join(' · ');
}
