/**
 * A real SMTP server for tests (smtp-server + mailparser) on a random
 * loopback port. Every accepted mail is parsed *before* the server answers
 * 250, so once a sender's call returned the mail is already in `mails`.
 * `refuse(true)` answers 451 to every recipient, as a relay that is down.
 * `onMail` runs after a mail is caught and before the 250 goes back, so a
 * test can break something in the instant between "accepted" and "sender
 * knows it".
 */
import type { AddressInfo } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';

export type ReceivedMail = {
  parsed: ParsedMail;
  /** SMTP envelope recipients (RCPT TO). */
  rcptTo: string[];
  subject: string;
  text: string;
  html: string;
  /** Header `To` addresses. */
  to: string[];
};

export type TestSmtp = {
  port: number;
  url: string;
  mails: ReceivedMail[];
  /** While on, every recipient is refused with a temporary error (451). */
  refuse(on: boolean): void;
  /** Number of refused attempts so far. */
  refusals(): number;
  close(): Promise<void>;
};

export async function startTestSmtp(o: { onMail?: (m: ReceivedMail) => void } = {}): Promise<TestSmtp> {
  const mails: ReceivedMail[] = [];
  let refusing = false;
  let refused = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    logger: false,
    onRcptTo(_address, _session, done) {
      if (refusing) {
        refused++;
        return done(Object.assign(new Error('Service temporarily unavailable, try again later'), { responseCode: 451 }));
      }
      done();
    },
    onData(stream, session, done) {
      simpleParser(stream)
        .then((parsed) => {
          const to = parsed.to ? (Array.isArray(parsed.to) ? parsed.to : [parsed.to]).flatMap((a) => a.value.map((v) => v.address ?? '')) : [];
          const mail: ReceivedMail = {
            parsed,
            rcptTo: session.envelope.rcptTo.map((r) => r.address),
            subject: parsed.subject ?? '',
            text: parsed.text ?? '',
            html: typeof parsed.html === 'string' ? parsed.html : '',
            to,
          };
          mails.push(mail);
          o.onMail?.(mail);
          done();
        })
        .catch((err: Error) => done(err));
    },
  });
  // A client that drops its connection (timeouts under load) surfaces as an
  // 'error' event; unhandled, it would crash the test process.
  server.on('error', (err) => process.stderr.write(`test SMTP server: ${err.message}\n`));
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;
  return {
    port,
    url: `smtp://127.0.0.1:${port}`,
    mails,
    refuse: (on) => {
      refusing = on;
    },
    refusals: () => refused,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
