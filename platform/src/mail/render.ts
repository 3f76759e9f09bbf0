/**
 * Turns one structured mail (subject, paragraphs, an action button, detail
 * rows) into its text and HTML parts. Templates describe *what* to say once;
 * this module decides how it looks, so the two parts can never drift apart
 * and every value is HTML-escaped in exactly one place.
 */

export type MailContent = {
  subject: string;
  /** "Hello Ada," — omitted when we do not know the name. */
  greeting?: string;
  paragraphs: string[];
  /** The one thing the reader should do (a link button). */
  action?: { label: string; url: string };
  /** Label/value rows shown as a small table (instance, date, size...). */
  details?: [string, string][];
  /** Extra lines after the action (e.g. "If you did not ask for this..."). */
  after?: string[];
  /** Small print under the signature: the operator's name, postal address and support contact. */
  footer?: string[];
};

export type RenderedMail = { subject: string; text: string; html: string };

const PRODUCT = 'SaaSOdoo';

/** Escapes text for HTML element content and double-quoted attributes. */
export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** Only http(s) links make it into a mail (no javascript:, data:, mailto tricks). */
export function assertWebUrl(url: string): string {
  const u = new URL(url);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`refusing a ${u.protocol} link in a mail`);
  return u.toString();
}

/** Renders the text and HTML parts of a mail. */
export function renderMail(c: MailContent): RenderedMail {
  const action = c.action ? { label: c.action.label, url: assertWebUrl(c.action.url) } : undefined;
  const text = [
    c.greeting,
    ...c.paragraphs,
    action ? `${action.label}:\n${action.url}` : undefined,
    c.details?.length ? c.details.map(([k, v]) => `${k}: ${v}`).join('\n') : undefined,
    ...(c.after ?? []),
    `— The ${PRODUCT} team`,
    c.footer?.length ? `--\n${c.footer.join('\n')}` : undefined,
  ]
    .filter((p): p is string => Boolean(p))
    .join('\n\n');

  const p = (s: string) => `<p style="margin:0 0 16px">${escapeHtml(s)}</p>`;
  // A detail that is a web address becomes a link; anything else stays text.
  const cell = (v: string) => (/^https?:\/\/\S+$/.test(v) ? `<a href="${escapeHtml(assertWebUrl(v))}">${escapeHtml(v)}</a>` : escapeHtml(v));
  const html = [
    '<!doctype html>',
    `<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(c.subject)}</title></head>`,
    '<body style="margin:0;padding:24px;background:#f4f5f7;font-family:Arial,Helvetica,sans-serif;color:#1f2933;line-height:1.5">',
    '<div style="max-width:560px;margin:0 auto;background:#ffffff;border-radius:8px;padding:32px">',
    `<p style="margin:0 0 24px;font-weight:bold;color:#714b67">${PRODUCT}</p>`,
    c.greeting ? p(c.greeting) : '',
    ...c.paragraphs.map(p),
    action
      ? `<p style="margin:24px 0"><a href="${escapeHtml(action.url)}" style="background:#714b67;color:#ffffff;padding:12px 20px;border-radius:6px;text-decoration:none;display:inline-block">${escapeHtml(action.label)}</a></p>` +
        `<p style="margin:0 0 16px;font-size:13px;color:#52606d">Or open this link: <a href="${escapeHtml(action.url)}">${escapeHtml(action.url)}</a></p>`
      : '',
    c.details?.length
      ? `<table style="border-collapse:collapse;margin:0 0 16px">${c.details
          .map(([k, v]) => `<tr><td style="padding:4px 16px 4px 0;color:#52606d">${escapeHtml(k)}</td><td style="padding:4px 0">${cell(v)}</td></tr>`)
          .join('')}</table>`
      : '',
    ...(c.after ?? []).map(p),
    `<p style="margin:24px 0 0;color:#52606d">— The ${PRODUCT} team</p>`,
    '</div>',
    c.footer?.length ? `<p style="max-width:560px;margin:16px auto 0;font-size:12px;color:#52606d;text-align:center">${c.footer.map((l) => escapeHtml(l)).join('<br>')}</p>` : '',
    '</body></html>',
  ].join('\n');

  return { subject: c.subject, text: `${text}\n`, html };
}
