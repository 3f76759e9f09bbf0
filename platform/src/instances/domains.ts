/**
 * Custom domains. An owner claims a domain for an instance and gets two DNS
 * records to create: a CNAME to the instance's own address and a TXT record
 * `_saasodoo-challenge.<domain>` holding a token of this claim. A check (on
 * demand, and daily for pending claims) resolves both; only then is the
 * domain verified, routed (the gateway locally, the IngressRoute and a
 * certificate on Kubernetes) and, when it is the first, Odoo's own address.
 * A domain is verified for one instance at a time across all tenants (a
 * unique index), so nobody can take over a domain someone else proved.
 */
import { randomBytes } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import { z } from 'zod';
import { config } from '../config.ts';
import { db, type Tx } from '../db/index.ts';
import { HttpError } from '../errors.ts';
import { enqueue, transact } from '../outbox.ts';
import { findPlan } from '../plans.ts';
import type { InstanceRow } from './repository.ts';

export const CHALLENGE_PREFIX = '_saasodoo-challenge';

/** A DNS name a customer may claim: letters, digits and hyphens in labels (IDNs as punycode), at least two labels. */
export const domainSchema = z
  .string()
  .trim()
  .toLowerCase()
  .max(253, 'at most 253 characters')
  .transform((s) => s.replace(/\.$/, ''))
  .refine((s) => /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(s), 'a domain name such as erp.example.com')
  .refine((s) => !s.split('.').some((l) => l.startsWith(CHALLENGE_PREFIX)), 'not a challenge record name');

export type DomainRow = {
  instance_id: string;
  domain: string;
  token: string;
  verified_at: Date | null;
  checked_at: Date | null;
  problem: string | null;
  /** A verified domain's records stopped checking out at this time (null while they do). */
  failing_since: Date | null;
  created_at: Date;
};

/** How long a verified domain whose records went away is still served: time for a DNS mistake to be fixed. */
export const RELEASE_AFTER_DAYS = 7;

/** The instance's own address, which a custom domain's CNAME must name. */
export function instanceHostname(row: Pick<InstanceRow, 'subdomain'>): string {
  return `${row.subdomain}.${config().BASE_DOMAIN}`;
}

/** What the portal shows for a claim: its state and the two records to create. */
export function toApi(d: DomainRow, row: Pick<InstanceRow, 'subdomain' | 'custom_domains'>) {
  return {
    domain: d.domain,
    verified: d.verified_at !== null,
    primary: row.custom_domains[0] === d.domain,
    verifiedAt: d.verified_at?.toISOString() ?? null,
    checkedAt: d.checked_at?.toISOString() ?? null,
    problem: d.problem,
    // Verified, but its records no longer check out: served until releasesAt, then released.
    failingSince: d.failing_since?.toISOString() ?? null,
    releasesAt: d.failing_since ? new Date(d.failing_since.getTime() + RELEASE_AFTER_DAYS * 86_400_000).toISOString() : null,
    records: [
      { type: 'CNAME', name: d.domain, value: instanceHostname(row) },
      { type: 'TXT', name: `${CHALLENGE_PREFIX}.${d.domain}`, value: d.token },
    ],
  };
}

export async function listDomains(instanceId: string): Promise<DomainRow[]> {
  return db('instance').manyOrNone<DomainRow>('SELECT * FROM instance_domains WHERE instance_id = $1 ORDER BY created_at, domain', [instanceId]);
}

/** Claims `domain` for the instance (within its plan's number), or returns the existing claim. */
export async function addDomain(row: InstanceRow, domain: string): Promise<DomainRow> {
  if (domain === instanceHostname(row) || domain.endsWith(`.${config().BASE_DOMAIN}`)) {
    throw HttpError.badRequest('That address is already the instance’s own', { domain: `use a domain of your own, not one under ${config().BASE_DOMAIN}` });
  }
  if (row.status === 'terminating' || row.status === 'terminated') throw HttpError.conflict(`Cannot add a domain to an instance that is ${row.status}`);
  return db('instance').tx(async (t) => {
    await t.any('SELECT 1 FROM instances WHERE id = $1 FOR UPDATE', [row.id]);
    const existing = await t.oneOrNone<DomainRow>('SELECT * FROM instance_domains WHERE instance_id = $1 AND domain = $2', [row.id, domain]);
    if (existing) return existing;
    await refuseIfVerifiedElsewhere(t, row.id, domain);
    const limit = findPlan(row.plan, true)?.customDomains ?? 1;
    const { n } = await t.one<{ n: number }>('SELECT count(*)::int AS n FROM instance_domains WHERE instance_id = $1', [row.id]);
    if (n >= limit) {
      throw HttpError.conflict(`This plan allows ${limit} custom domain${limit === 1 ? '' : 's'}: remove one first or change plan`, { domain: `at most ${limit} on this plan` });
    }
    return t.one<DomainRow>('INSERT INTO instance_domains (instance_id, domain, token) VALUES ($1, $2, $3) RETURNING *', [row.id, domain, randomBytes(18).toString('base64url')]);
  });
}

async function refuseIfVerifiedElsewhere(t: Tx, instanceId: string, domain: string): Promise<void> {
  const taken = await t.oneOrNone('SELECT 1 FROM instance_domains WHERE domain = $1 AND verified_at IS NOT NULL AND instance_id <> $2', [domain, instanceId]);
  if (taken) throw HttpError.conflict('This domain is already in use by another instance', { domain: 'already verified for another instance' });
}

function resolver(): Resolver {
  const r = new Resolver({ timeout: 3000, tries: 2 });
  const servers = config().DNS_SERVERS;
  if (servers.length) r.setServers(servers);
  return r;
}

const NOT_FOUND = new Set(['ENOTFOUND', 'ENODATA', 'ENONAME', 'NXDOMAIN']);

/** Why the records do not prove the claim yet, in the customer's words; undefined when they do. */
export async function dnsProblem(d: Pick<DomainRow, 'domain' | 'token'>, target: string): Promise<string | undefined> {
  const r = resolver();
  const lookup = async <T>(q: () => Promise<T>): Promise<T | undefined> =>
    q().catch((err: NodeJS.ErrnoException) => {
      if (err.code && NOT_FOUND.has(err.code)) return undefined;
      throw HttpError.unavailable('DNS');
    });
  const cnames = (await lookup(() => r.resolveCname(d.domain))) ?? [];
  const norm = (s: string) => s.toLowerCase().replace(/\.$/, '');
  if (!cnames.length) return `No CNAME record for ${d.domain} yet`;
  if (!cnames.map(norm).includes(target)) return `${d.domain} points to ${norm(cnames[0]!)}, not to ${target}`;
  const txt = ((await lookup(() => r.resolveTxt(`${CHALLENGE_PREFIX}.${d.domain}`))) ?? []).map((chunks) => chunks.join(''));
  if (!txt.length) return `No TXT record for ${CHALLENGE_PREFIX}.${d.domain} yet`;
  if (!txt.includes(d.token)) return `The TXT record for ${CHALLENGE_PREFIX}.${d.domain} does not hold this domain’s token`;
  return undefined;
}

/**
 * Checks a claim's records; on success marks it verified and asks for the
 * routes to be applied (`instance.routes`, which also moves Odoo's address).
 * A verified domain is checked again: while its records fail it is still
 * served, and after RELEASE_AFTER_DAYS it is released, so a domain that
 * changed hands can be proven by its new owner. Returns the claim as it now stands.
 */
export async function checkDomain(row: InstanceRow, domain: string): Promise<DomainRow> {
  const claim = await db('instance').oneOrNone<DomainRow>('SELECT * FROM instance_domains WHERE instance_id = $1 AND domain = $2', [row.id, domain]);
  if (!claim) throw HttpError.notFound(`No claim for ${domain} on this instance`);
  const problem = await dnsProblem(claim, instanceHostname(row));
  if (claim.verified_at) return recheckVerified(row, domain, problem);
  return transact('instance', async (t) => {
    await t.any('SELECT 1 FROM instances WHERE id = $1 FOR UPDATE', [row.id]);
    if (problem) {
      return t.one<DomainRow>('UPDATE instance_domains SET checked_at = now(), problem = $3 WHERE instance_id = $1 AND domain = $2 RETURNING *', [row.id, domain, problem]);
    }
    await refuseIfVerifiedElsewhere(t, row.id, domain);
    const done = await t.one<DomainRow>('UPDATE instance_domains SET checked_at = now(), problem = NULL, verified_at = now() WHERE instance_id = $1 AND domain = $2 RETURNING *', [row.id, domain]);
    await syncRoutes(t, row);
    return done;
  });
}

async function recheckVerified(row: InstanceRow, domain: string, problem: string | undefined): Promise<DomainRow> {
  return transact('instance', async (t) => {
    await t.any('SELECT 1 FROM instances WHERE id = $1 FOR UPDATE', [row.id]);
    if (!problem) {
      return t.one<DomainRow>('UPDATE instance_domains SET checked_at = now(), problem = NULL, failing_since = NULL WHERE instance_id = $1 AND domain = $2 RETURNING *', [row.id, domain]);
    }
    const d = await t.one<DomainRow>(
      `UPDATE instance_domains SET checked_at = now(), problem = $3, failing_since = coalesce(failing_since, now())
        WHERE instance_id = $1 AND domain = $2 RETURNING *`,
      [row.id, domain, problem],
    );
    if (d.failing_since!.getTime() > Date.now() - RELEASE_AFTER_DAYS * 86_400_000) return d;
    const released = await t.one<DomainRow>('UPDATE instance_domains SET verified_at = NULL, failing_since = NULL WHERE instance_id = $1 AND domain = $2 RETURNING *', [row.id, domain]);
    await syncRoutes(t, row);
    return released;
  });
}

/** Drops a claim; a verified domain stops being routed. */
export async function removeDomain(row: InstanceRow, domain: string): Promise<void> {
  await transact('instance', async (t) => {
    await t.any('SELECT 1 FROM instances WHERE id = $1 FOR UPDATE', [row.id]);
    const gone = await t.oneOrNone<DomainRow>('DELETE FROM instance_domains WHERE instance_id = $1 AND domain = $2 RETURNING *', [row.id, domain]);
    if (!gone) throw HttpError.notFound(`No claim for ${domain} on this instance`);
    if (gone.verified_at) await syncRoutes(t, row);
  });
}

/** Copies the verified domains onto the instance (primary first) and asks the runtime side to apply them. */
async function syncRoutes(t: Tx, row: InstanceRow): Promise<void> {
  await t.none(
    `UPDATE instances SET custom_domains = coalesce((SELECT array_agg(domain ORDER BY verified_at, domain) FROM instance_domains
       WHERE instance_id = $1 AND verified_at IS NOT NULL), '{}'), updated_at = now() WHERE id = $1`,
    [row.id],
  );
  await enqueue(t, 'instance.routes', { instanceId: row.id, customerId: row.customer_id }, { subject: row.id });
}

/** What the daily schedule checks: claims younger than a week still pending, and every verified domain. */
export async function claimsToCheck(): Promise<{ instance_id: string; domain: string }[]> {
  return db('instance').manyOrNone(
    `SELECT d.instance_id, d.domain FROM instance_domains d JOIN instances i ON i.id = d.instance_id
     WHERE (d.verified_at IS NOT NULL OR d.created_at > now() - interval '7 days') AND i.status NOT IN ('terminating', 'terminated')`,
  );
}

/** The instance a verified custom domain routes to (the local gateway's lookup). */
export async function subdomainForDomain(host: string): Promise<string | undefined> {
  const r = await db('instance').oneOrNone<{ subdomain: string }>(`SELECT subdomain FROM instances WHERE custom_domains @> ARRAY[$1]::text[] AND status NOT IN ('terminating', 'terminated')`, [host]);
  return r?.subdomain;
}
