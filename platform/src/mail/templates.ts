/**
 * Every mail of platform/src/mail/README.md, as structured content (see render.ts). Templates get
 * only the values they print plus the portal's public address, so they are
 * pure functions: easy to test, and nothing secret can reach a mail unless a
 * template names it. The one-time links (verify, reset) are the only tokens
 * that ever appear, each in its own mail.
 */
import { renderMail, type MailContent, type RenderedMail } from './render.ts';

/** How a mail names an instance: its name (or subdomain), and where it lives. */
export type InstanceRef = { id: string; label: string; url?: string };

type WithName = { firstName?: string };
type WithInstance = WithName & { instance: InstanceRef };
/** The invoice a billing mail is about: its number, amount, what is left to pay and when it is due. */
export type InvoiceFacts = { number: string; amount: number; balance: number; currency: string; dueDate: string };
/** Billing mails also get the billing status the change led to (trial, paid, payment_required, overdue, suspended). */
type MaybeInstance = WithName & { instance?: InstanceRef; status?: string; invoice?: InvoiceFacts };

/** The variables each template needs. */
export type TemplateVars = {
  /** No name: the address is not verified yet, and whoever signed up chose the name. */
  'verify-email': { verifyUrl: string };
  welcome: WithName;
  'signup-attempt': Record<string, never>;
  'password-reset': WithName & { resetUrl: string };
  'password-changed': WithName;
  'instance-ready': WithInstance;
  /** A staging copy made or refreshed: the original's name and when its data was copied. */
  'staging-ready': WithInstance & { original: string; copiedAt: string };
  'instance-failed': WithInstance & { step: string };
  'trial-ending': WithName & { daysLeft: 7 | 3 | 1; trialEndsAt: string };
  'trial-ended': MaybeInstance;
  'invoice-created': MaybeInstance;
  'payment-succeeded': MaybeInstance;
  'payment-failed': MaybeInstance;
  'overdue-warning': MaybeInstance;
  'instance-suspended': MaybeInstance;
  'instance-resumed': MaybeInstance;
  'cancellation-scheduled': MaybeInstance & { effectiveDate?: string };
  'instance-terminated': WithInstance;
  'backup-completed': WithInstance & { sizeBytes: number };
  'backup-failed': WithInstance;
  /** status: where the restore left the instance (a stopped instance stays stopped). */
  'restore-completed': WithInstance & { status?: 'running' | 'stopped' };
  'restore-failed': WithInstance;
  /** Operator alerts (issue 20): a database pool failed its health check 3 times in a row, or answers again. */
  'pool-unhealthy': { pool: string; failures: number; reason: string };
  'pool-recovered': { pool: string };
};

export type TemplateName = keyof TemplateVars;

/** Where links point (the portal's public address) and who signs every mail (settings OPERATOR_NAME, OPERATOR_POSTAL_ADDRESS, SUPPORT_CONTACT). */
export type TemplateContext = { publicUrl: string; operator?: Operator };
export type Operator = { name: string; postalAddress: string; support: string };

/** `/billing` → `https://portal.example/billing` (keeps a path prefix of PUBLIC_URL). */
export function portalLink(publicUrl: string, pagePath: string): string {
  return `${publicUrl.replace(/\/+$/, '')}${pagePath}`;
}

/** `2026-12-03T10:00:00Z` → `Thursday 3 December 2026` (UTC); anything unparseable is shown as given. */
export function formatDate(value: string): string {
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return value;
  return new Intl.DateTimeFormat('en-GB', { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC' }).format(d);
}

/** An ISO instant as a date and a UTC time (`Monday, 7 December 2026 at 03:40 UTC`): a copy's moment matters to the minute. */
export function formatDateTime(value: string): string {
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return value;
  const time = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone: 'UTC' }).format(d);
  return `${formatDate(value)} at ${time} UTC`;
}

/** 5, `USD` → `$5.00`. */
export function formatMoney(amount: number, currency: string): string {
  return new Intl.NumberFormat('en-US', { style: 'currency', currency }).format(amount);
}

/** The invoice lines of a billing mail: number, amount, due date, and the balance when something is left to pay. */
function invoiceDetails(i: InvoiceFacts | undefined): [string, string][] {
  if (!i) return [];
  return [
    ['Invoice', i.number],
    ['Amount', formatMoney(i.amount, i.currency)],
    ['Due', formatDate(i.dueDate)],
    ...(i.balance > 0 && i.balance !== i.amount ? [['Still to pay', formatMoney(i.balance, i.currency)] as [string, string]] : []),
  ];
}

/** 1536 → `1.5 KiB`. */
export function formatBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} bytes` : `${v.toFixed(1)} ${units[i]}`;
}

/** Longest first name a greeting prints: a name, not a sentence. */
export const GREETING_NAME_MAX = 40;

/**
 * "Hello Ada,": the name on one line (control and format characters and runs
 * of white space become one space) and cut to GREETING_NAME_MAX characters,
 * so even a name typed to carry a message cannot make the greeting one.
 */
const hello = (v: WithName) => {
  const name = [...(v.firstName ?? '').replace(/[\p{Cc}\p{Cf}\p{Z}\s]+/gu, ' ').trim()];
  if (!name.length) return 'Hello,';
  return `Hello ${
    name.length > GREETING_NAME_MAX
      ? `${name
          .slice(0, GREETING_NAME_MAX - 1)
          .join('')
          .trimEnd()}…`
      : name.join('')
  },`;
};
const instanceDetails = (i: InstanceRef): [string, string][] =>
  i.url
    ? [
        ['Instance', i.label],
        ['Address', i.url],
      ]
    : [['Instance', i.label]];

type Builders = { [T in TemplateName]: (v: TemplateVars[T], link: (p: string) => string) => MailContent };

const builders: Builders = {
  'verify-email': (v) => ({
    subject: 'Confirm your email address',
    greeting: 'Hello,',
    paragraphs: ['Thanks for signing up for SaaSOdoo. Please confirm your email address to activate your account.'],
    action: { label: 'Confirm my email address', url: v.verifyUrl },
    after: ['This link works once and expires in 24 hours. If you did not sign up, ignore this mail: no account will be activated.'],
  }),
  welcome: (v, link) => ({
    subject: 'Welcome to SaaSOdoo',
    greeting: hello(v),
    paragraphs: ['Your email address is confirmed and your account is ready. You can now create your first Odoo instance.'],
    action: { label: 'Create an instance', url: link('/instances') },
  }),
  'signup-attempt': (_v, link) => ({
    subject: 'Someone tried to sign up with your email address',
    greeting: 'Hello,',
    paragraphs: [
      'Someone just tried to create a SaaSOdoo account with this email address. You already have an account, so nothing was created.',
      'If it was you, sign in with your existing account. If you forgot your password, you can reset it.',
    ],
    action: { label: 'Sign in', url: link('/login') },
    after: [`Forgot your password? Ask for a reset link: ${link('/forgot-password')}`, 'If it was not you, you can ignore this mail: your account is unchanged.'],
  }),
  'password-reset': (v) => ({
    subject: 'Reset your SaaSOdoo password',
    greeting: hello(v),
    paragraphs: ['We received a request to reset the password of your SaaSOdoo account.'],
    action: { label: 'Choose a new password', url: v.resetUrl },
    after: ['This link works once and expires in 1 hour. If you did not ask for it, ignore this mail: your password stays as it is.'],
  }),
  'password-changed': (v, link) => ({
    subject: 'Your SaaSOdoo password was changed',
    greeting: hello(v),
    paragraphs: ['The password of your SaaSOdoo account was just changed, and your other sessions were signed out.'],
    action: { label: 'Not you? Reset your password', url: link('/forgot-password') },
  }),
  'instance-ready': (v, link) => ({
    subject: `Your Odoo instance ${v.instance.label} is ready`,
    greeting: hello(v),
    paragraphs: [`Your Odoo instance ${v.instance.label} is up and running.`, 'Sign in with the administrator password shown in the portal when the instance was created (we never send it by mail).'],
    action: { label: 'Open my instance', url: v.instance.url ?? link(`/instances/${v.instance.id}`) },
    details: [...instanceDetails(v.instance), ['Manage it', link(`/instances/${v.instance.id}`)]],
  }),
  'staging-ready': (v, link) => ({
    subject: `Your staging copy of ${v.original} is ready`,
    greeting: hello(v),
    paragraphs: [
      `${v.instance.label} now holds a copy of ${v.original} as it was on ${formatDateTime(v.copiedAt)}.`,
      'Outgoing mail and scheduled actions are turned off in the copy, so you can try changes without anyone receiving anything. Sign in with the same users and passwords as in the original at that time.',
    ],
    action: { label: 'Open the staging copy', url: v.instance.url ?? link(`/instances/${v.instance.id}`) },
    details: [...instanceDetails(v.instance), ['Manage it', link(`/instances/${v.instance.id}`)]],
  }),
  'instance-failed': (v, link) => ({
    subject: `We could not set up your instance ${v.instance.label}`,
    greeting: hello(v),
    paragraphs: [`Setting up your Odoo instance ${v.instance.label} failed at the step "${v.step}". Our team has been notified and can resume it from that step.`],
    action: { label: 'See the instance', url: link(`/instances/${v.instance.id}`) },
    details: instanceDetails(v.instance),
  }),
  'trial-ending': (v, link) => ({
    subject: `Your SaaSOdoo trial ends in ${v.daysLeft} ${v.daysLeft === 1 ? 'day' : 'days'}`,
    greeting: hello(v),
    paragraphs: [`Your free trial ends on ${formatDate(v.trialEndsAt)}. Add a card before then to keep your instance running without interruption.`],
    action: { label: 'Add a card', url: link('/billing/card/new') },
  }),
  // One mail for the trial's end, its first invoice and that invoice's first payment (lifecycle sends one notice for the three).
  'trial-ended': (v, link) => {
    const ended = `Your free trial has ended${v.instance ? ` for ${v.instance.label}` : ''}`;
    if (v.status === 'paid') {
      return {
        subject: 'Your SaaSOdoo trial has ended: first payment received',
        greeting: hello(v),
        paragraphs: [`${ended} and we received the payment of your first invoice. Your instance keeps running; thank you!`],
        action: { label: 'See my invoices', url: link('/billing') },
      };
    }
    if (v.status === 'overdue') {
      return {
        subject: 'Your SaaSOdoo trial has ended: the first payment failed',
        greeting: hello(v),
        paragraphs: [
          `${ended}. We issued your first invoice, but could not collect its payment.`,
          'Your instance keeps running for now. Please check your payment method: unpaid accounts are suspended 14 days after the oldest unpaid invoice.',
        ],
        action: { label: 'Update my payment method', url: link('/billing') },
      };
    }
    return {
      subject: 'Your SaaSOdoo trial has ended',
      greeting: hello(v),
      paragraphs: [`${ended}. Your first invoice is in your billing page; your instance keeps running while it is paid.`],
      action: { label: 'Go to billing', url: link('/billing') },
    };
  },
  'invoice-created': (v, link) => ({
    subject: 'Your new SaaSOdoo invoice',
    greeting: hello(v),
    paragraphs: [
      v.invoice
        ? `Invoice ${v.invoice.number} for ${formatMoney(v.invoice.amount, v.invoice.currency)} is due on ${formatDate(v.invoice.dueDate)}; it is charged to your card on file.`
        : 'A new invoice is available in your billing page.',
    ],
    action: { label: 'See my invoices', url: link('/billing') },
    details: invoiceDetails(v.invoice),
  }),
  'payment-succeeded': (v, link) => ({
    subject: 'Payment received, thank you',
    greeting: hello(v),
    paragraphs: [v.invoice ? `We received your payment of ${formatMoney(v.invoice.amount, v.invoice.currency)} for invoice ${v.invoice.number}. Thank you!` : 'We received your payment. Thank you!'],
    action: { label: 'See my invoices', url: link('/billing') },
    details: invoiceDetails(v.invoice),
  }),
  'payment-failed': (v, link) => ({
    subject: 'Your SaaSOdoo payment failed',
    greeting: hello(v),
    paragraphs: [
      `We could not collect ${v.invoice ? `${formatMoney(v.invoice.balance, v.invoice.currency)} for invoice ${v.invoice.number}` : 'your last payment'}. Please update your card or pay now; unpaid accounts are suspended 14 days after the oldest unpaid invoice.`,
    ],
    action: { label: 'Pay now or update my card', url: link('/billing') },
    details: invoiceDetails(v.invoice),
  }),
  'overdue-warning': (v, link) => ({
    subject: 'Your SaaSOdoo account is overdue',
    greeting: hello(v),
    paragraphs: ['Your account has an invoice unpaid for 10 days. If it is still unpaid 14 days after it was issued, your instances will be suspended.'],
    action: { label: 'Pay now', url: link('/billing') },
    details: invoiceDetails(v.invoice),
  }),
  'instance-suspended': (v, link) => ({
    subject: v.instance ? `Your instance ${v.instance.label} is suspended` : 'Your SaaSOdoo instances are suspended',
    greeting: hello(v),
    paragraphs: [`${v.instance ? `Your Odoo instance ${v.instance.label} is` : 'Your Odoo instances are'} suspended because of an unpaid invoice. Your data is kept; paying the balance resumes it.`],
    action: { label: 'Pay now', url: link('/billing') },
    details: invoiceDetails(v.invoice),
  }),
  'instance-resumed': (v, link) => ({
    subject: v.instance ? `Your instance ${v.instance.label} is running again` : 'Your SaaSOdoo instances are running again',
    greeting: hello(v),
    paragraphs: ['Thank you for your payment. Your instance is running again.'],
    action: v.instance ? { label: 'See my instance', url: link(`/instances/${v.instance.id}`) } : { label: 'Go to billing', url: link('/billing') },
  }),
  'cancellation-scheduled': (v, link) => ({
    subject: 'Your SaaSOdoo subscription will end',
    greeting: hello(v),
    paragraphs: [
      `Your subscription${v.instance ? ` for ${v.instance.label}` : ''} is cancelled${v.effectiveDate ? ` and ends on ${formatDate(v.effectiveDate)}` : ''}.`,
      // A suspended instance does not come back because the end is scheduled: say so rather than promise it works.
      v.status === 'suspended'
        ? 'Your instance is suspended because of an unpaid invoice and stays unreachable until then unless the balance is paid. A final backup is kept for 30 days after the end.'
        : 'Until then your instance keeps working; a final backup is kept for 30 days after the end.',
    ],
    action: { label: 'Go to billing', url: link('/billing') },
  }),
  'instance-terminated': (v, link) => ({
    subject: `Your instance ${v.instance.label} was deleted`,
    greeting: hello(v),
    paragraphs: [`Your Odoo instance ${v.instance.label} has been removed. A final backup is kept for 30 days; after that nothing of it remains.`],
    action: { label: 'See my instances', url: link('/instances') },
  }),
  'backup-completed': (v, link) => ({
    subject: `Backup of ${v.instance.label} completed`,
    greeting: hello(v),
    paragraphs: [`A backup of your Odoo instance ${v.instance.label} was taken successfully.`],
    action: { label: 'See backups', url: link(`/instances/${v.instance.id}`) },
    details: [...instanceDetails(v.instance), ['Size', formatBytes(v.sizeBytes)]],
  }),
  'backup-failed': (v, link) => ({
    subject: `Backup of ${v.instance.label} failed`,
    greeting: hello(v),
    paragraphs: [`A backup of your Odoo instance ${v.instance.label} could not be completed. Your instance and earlier backups are not affected.`],
    action: { label: 'See the instance', url: link(`/instances/${v.instance.id}`) },
  }),
  'restore-completed': (v, link) => ({
    subject: `Restore of ${v.instance.label} completed`,
    greeting: hello(v),
    paragraphs: [
      v.status === 'stopped'
        ? `Your Odoo instance ${v.instance.label} was restored from the backup you chose. It was stopped before the restore and stays stopped: start it when you are ready.`
        : `Your Odoo instance ${v.instance.label} was restored from the backup you chose and is running again.`,
    ],
    action: { label: 'See the instance', url: link(`/instances/${v.instance.id}`) },
  }),
  'restore-failed': (v, link) => ({
    subject: `Restore of ${v.instance.label} failed`,
    greeting: hello(v),
    paragraphs: [`Restoring your Odoo instance ${v.instance.label} failed. The instance was left exactly as it was before the restore.`],
    action: { label: 'See the instance', url: link(`/instances/${v.instance.id}`) },
  }),
  'pool-unhealthy': (v, link) => ({
    subject: `Database server ${v.pool} is unhealthy`,
    greeting: 'Hello,',
    paragraphs: [
      `The database server ${v.pool} did not answer its health check ${v.failures} times in a row. No new instance databases are placed on it until it answers again; the instances already on it may be down.`,
    ],
    action: { label: 'See the database servers', url: link('/admin/pools') },
    details: [['Last error', v.reason]],
  }),
  'pool-recovered': (v, link) => ({
    subject: `Database server ${v.pool} answers again`,
    greeting: 'Hello,',
    paragraphs: [`The database server ${v.pool} answers its health check again and takes new instance databases.`],
    action: { label: 'See the database servers', url: link('/admin/pools') },
  }),
};

/** Every template name (tests iterate over them). */
export const TEMPLATE_NAMES = Object.keys(builders) as TemplateName[];

/** Renders one template to its subject, text and HTML parts. */
export function renderTemplate<T extends TemplateName>(name: T, vars: TemplateVars[T], ctx: TemplateContext): RenderedMail {
  const build = builders[name] as (v: TemplateVars[T], link: (p: string) => string) => MailContent;
  const o = ctx.operator;
  const footer = o ? [`${o.name} · ${o.postalAddress}`, `Questions? Contact us: ${o.support}`] : undefined;
  return renderMail({ ...build(vars, (p) => portalLink(ctx.publicUrl, p)), footer });
}
