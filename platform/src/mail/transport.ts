/**
 * The SMTP connection mails leave by: `SMTP_URL` when set (a real relay),
 * otherwise the local host's catcher on SMTP_PORT. Timeouts are short so a
 * dead server fails the attempt well inside the trigger's delivery timeout and
 * the broker retries, instead of the attempt hanging.
 */
import nodemailer, { type Transporter } from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import { config } from '../config.ts';
import { HttpError } from '../errors.ts';
import { log } from '../log.ts';

/** The SMTP server URL this process sends through. */
export function smtpUrl(): string {
  return config().SMTP_URL ?? `smtp://127.0.0.1:${config().SMTP_PORT}`;
}

let cached: { url: string; transporter: Transporter } | undefined;

function transporter(): Transporter {
  const url = smtpUrl();
  if (cached?.url !== url) {
    cached?.transporter.close();
    const u = new URL(url);
    cached = {
      url,
      transporter: nodemailer.createTransport({
        url,
        connectionTimeout: 5_000,
        greetingTimeout: 5_000,
        socketTimeout: 10_000,
        // Loopback catchers speak plain SMTP; anything else must upgrade to TLS when offered.
        ignoreTLS: u.hostname === '127.0.0.1' || u.hostname === 'localhost',
      } satisfies SMTPTransport.Options),
    };
  }
  return cached.transporter;
}

export type OutgoingMail = {
  to: string;
  subject: string;
  text: string;
  html: string;
  /** Stable Message-ID: a resend of the same logical mail carries the same id, so clients can fold duplicates. */
  messageId: string;
};

/**
 * Sends one mail. Any SMTP failure (server down, refused, timeout) becomes a
 * 503 so an event consumer answers 5xx and the broker retries it later.
 */
export async function sendMail(m: OutgoingMail): Promise<{ messageId: string }> {
  try {
    const info = await transporter().sendMail({
      from: config().MAIL_FROM,
      to: m.to,
      subject: m.subject,
      text: m.text,
      html: m.html,
      messageId: m.messageId,
    });
    return { messageId: String(info.messageId ?? m.messageId) };
  } catch (err) {
    const e = err as { code?: string; responseCode?: number; message?: string };
    log.warn({ code: e.code, responseCode: e.responseCode, message: e.message }, 'SMTP send failed; will be retried');
    throw HttpError.unavailable('The mail server', 30);
  }
}

/** Closes the pooled connection (shutdown, tests). */
export function closeMailTransport(): void {
  cached?.transporter.close();
  cached = undefined;
}
