/**
 * The operator-editable texts (terms, privacy): plain text files in
 * web/content/ (or SITE_CONTENT_DIR), read when a page is served, so an
 * operator changes them without a rebuild. `# ` lines are headings, blank
 * lines separate paragraphs; nothing is interpreted as HTML.
 */
import fs from 'node:fs';
import path from 'node:path';
import { serverEnv } from './env';

export type Block = { heading: string } | { paragraph: string };

/** The blocks of content file `name` (e.g. 'terms'); undefined when the operator has not written it. */
export function siteText(name: 'terms' | 'privacy'): Block[] | undefined {
	const dir = serverEnv().SITE_CONTENT_DIR ?? path.resolve('content'); // the portal runs in web/
	let text: string;
	try {
		text = fs.readFileSync(path.join(dir, `${name}.md`), 'utf8');
	} catch {
		return undefined;
	}
	return text
		.split(/\n\s*\n/)
		.map((b) => b.trim())
		.filter(Boolean)
		.map((b) => (b.startsWith('# ') ? { heading: b.slice(2).trim() } : { paragraph: b.replace(/\s*\n\s*/g, ' ') }));
}
