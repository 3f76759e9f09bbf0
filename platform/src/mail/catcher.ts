/**
 * The local SMTP catcher: an SMTP server on loopback that accepts every mail
 * and keeps it as `<DATA_DIR>/mail/<id>.eml`, so `npm start` needs no real
 * mail relay and a developer can open the verification link with
 * `platform mail show last`. Also the reader behind `platform mail list|show`.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { config } from '../config.ts';
import { log } from '../log.ts';

/** Where caught mails live. */
export function mailDir(dataDir = config().dataDir): string {
  return path.join(dataDir, 'mail');
}

/** `20261126T155012345Z-a1b2c3`: sorts by arrival, unique without coordination. */
function newMailId(): string {
  return `${new Date().toISOString().replace(/[-:.]/g, '')}-${randomBytes(3).toString('hex')}`;
}

const MAX_BYTES = 10 * 1024 * 1024;

export type MailCatcher = { port: number; url: string; stop(): Promise<void> };

/**
 * Starts the catcher on 127.0.0.1:`port` (0 = any free port). Plain SMTP, no
 * authentication: it is reachable from this machine only. Each mail is
 * written to a temporary file and renamed, so a reader never sees half a mail.
 */
export async function startMailCatcher(o: { port: number; dir?: string }): Promise<MailCatcher> {
  const dir = o.dir ?? mailDir();
  fs.mkdirSync(dir, { recursive: true });
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    size: MAX_BYTES,
    banner: 'SaaSOdoo local mail catcher',
    logger: false,
    onData(stream, _session, done) {
      const id = newMailId();
      const tmp = path.join(dir, `.${id}.tmp`);
      const out = fs.createWriteStream(tmp);
      stream.pipe(out);
      out.on('error', (err) => done(err));
      out.on('finish', () => {
        if (stream.sizeExceeded) {
          fs.rmSync(tmp, { force: true });
          return done(Object.assign(new Error('Message too big'), { responseCode: 552 }));
        }
        fs.renameSync(tmp, path.join(dir, `${id}.eml`));
        log.info({ mailId: id }, 'mail caught');
        done();
      });
    },
  });
  server.on('error', (err) => log.warn({ err }, 'mail catcher error'));
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(o.port, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;
  return {
    port,
    url: `smtp://127.0.0.1:${port}`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export type CaughtMail = { id: string; date?: Date; from: string; to: string; subject: string };

function ids(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.eml'))
    .map((f) => f.slice(0, -4))
    .sort();
}

/** Caught mails, oldest first; `to` keeps only mails to that address. */
export async function listCaughtMails(o: { dir?: string; to?: string } = {}): Promise<CaughtMail[]> {
  const dir = o.dir ?? mailDir();
  const out: CaughtMail[] = [];
  for (const id of ids(dir)) {
    const m = await simpleParser(fs.createReadStream(path.join(dir, `${id}.eml`)), { skipHtmlToText: true, skipTextToHtml: true, skipImageLinks: true });
    const to = m.to ? (Array.isArray(m.to) ? m.to.map((a) => a.text).join(', ') : m.to.text) : '';
    if (o.to && !to.toLowerCase().includes(o.to.toLowerCase())) continue;
    out.push({ id, date: m.date, from: m.from?.text ?? '', to, subject: m.subject ?? '' });
  }
  return out;
}

/** One caught mail, raw and parsed; `last` names the newest. Undefined when there is no such mail. */
export async function readCaughtMail(id: string, dir = mailDir()): Promise<{ id: string; raw: string; parsed: ParsedMail } | undefined> {
  const all = ids(dir);
  const found = id === 'last' ? all.at(-1) : all.find((x) => x === id);
  if (!found) return undefined;
  const raw = fs.readFileSync(path.join(dir, `${found}.eml`), 'utf8');
  return { id: found, raw, parsed: await simpleParser(raw) };
}
