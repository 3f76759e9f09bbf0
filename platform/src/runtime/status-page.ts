/**
 * The pages a customer sees at an instance's URL when Odoo is not serving:
 * one wording for both runtimes (the local gateway renders them per request;
 * on Kubernetes they are rendered once into the status-page server's
 * ConfigMap, see kubernetes/status-pages.ts).
 */

/** Run states that answer with a page instead of Odoo. */
export type PageState = 'suspended' | 'stopped' | 'starting' | 'failed';

const PAGES: Record<PageState, { status: number; title: string; text: (name: string) => string }> = {
  suspended: { status: 403, title: 'Instance suspended', text: (n) => `${n} is suspended because of an unpaid invoice. It comes back, with all its data, once the payment goes through.` },
  stopped: { status: 503, title: 'Instance stopped', text: (n) => `${n} is stopped. Its owner can start it again from the portal.` },
  starting: { status: 503, title: 'Instance starting', text: (n) => `${n} is starting; try again in a few seconds.` },
  failed: { status: 502, title: 'Instance not answering', text: (n) => `${n} is not running right now.` },
};

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * HTTP status and HTML for an instance in `state`; `name` is the instance's
 * display name (escaped here), or a generic "This Odoo instance" where one
 * page serves every instance.
 */
export function statusPage(state: PageState, name: string): { status: number; html: string } {
  const p = PAGES[state];
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(p.title)}</title></head>
<body style="font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;line-height:1.5"><h1>${esc(p.title)}</h1><p>${esc(p.text(name))}</p></body></html>`;
  return { status: p.status, html };
}

export function isPageState(state: string): state is PageState {
  return state in PAGES;
}
