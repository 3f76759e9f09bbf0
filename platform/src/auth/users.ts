/** Users in the auth database: creation, lookup, profile and role changes. */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { text } from '@saasodoo/events';
import { db, type Db, type Tx } from '../db/index.ts';
import type { Role } from './tokens.ts';

export type User = {
  id: string;
  email: string;
  passwordHash: string;
  firstName: string;
  lastName: string;
  role: Role;
  emailVerifiedAt: Date | null;
  createdAt: Date;
};

/** An email as we store and compare it: trimmed, lower case. */
export const emailSchema = z.preprocess((v) => (typeof v === 'string' ? v.trim().toLowerCase() : v), z.email('must be a valid email address').max(254, 'must be at most 254 characters'));

/** A first or last name: free text (one line, NFC: events/text.ts), trimmed. */
export const nameSchema = text().trim().min(1, 'required').max(100, 'must be at most 100 characters');

const COLUMNS = `id, email, password_hash AS "passwordHash", first_name AS "firstName", last_name AS "lastName",
  role, email_verified_at AS "emailVerifiedAt", created_at AS "createdAt"`;

export function findUserByEmail(q: Db | Tx, email: string): Promise<User | null> {
  return q.oneOrNone<User>(`SELECT ${COLUMNS} FROM users WHERE email = $1`, [email]);
}

export function findUserById(q: Db | Tx, id: string): Promise<User | null> {
  return q.oneOrNone<User>(`SELECT ${COLUMNS} FROM users WHERE id = $1`, [id]);
}

/**
 * Inserts a user; returns undefined when the email is taken (the caller
 * answers the same either way, platform/src/auth/README.md 2 no enumeration).
 */
export async function insertUser(t: Tx, u: { email: string; passwordHash: string; firstName: string; lastName: string; role?: Role; verified?: boolean }): Promise<string | undefined> {
  const row = await t.oneOrNone<{ id: string }>(
    `INSERT INTO users (id, email, password_hash, first_name, last_name, role, email_verified_at, terms_accepted_at)
     VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $7 THEN now() END, now())
     ON CONFLICT (email) DO NOTHING RETURNING id`,
    [randomUUID(), u.email, u.passwordHash, u.firstName, u.lastName, u.role ?? 'customer', u.verified ?? false],
  );
  return row?.id;
}

/** Sets a user's role by email; the new role applies to their live sessions at once. Returns the user, or null. */
export async function setRoleByEmail(email: string, role: Role): Promise<{ id: string; sessionIds: string[] } | null> {
  return db('auth').tx(async (t) => {
    const row = await t.oneOrNone<{ id: string }>('UPDATE users SET role = $2, updated_at = now() WHERE email = $1 RETURNING id', [email, role]);
    if (!row) return null;
    const sessions = await t.manyOrNone<{ id: string }>('SELECT id FROM user_sessions WHERE user_id = $1 AND expires_at > now()', [row.id]);
    return { id: row.id, sessionIds: sessions.map((s) => s.id) };
  });
}

/** Changes a user's names; an absent one stays as it is. */
export async function updateProfile(q: Db | Tx, id: string, names: { firstName?: string; lastName?: string }): Promise<void> {
  await q.none('UPDATE users SET first_name = coalesce($2, first_name), last_name = coalesce($3, last_name), updated_at = now() WHERE id = $1', [id, names.firstName ?? null, names.lastName ?? null]);
}

/**
 * Marks the email verified (kept if it already was): a used verify link, or
 * a used reset link, which proves the same thing (the person reads that mailbox).
 */
export async function markEmailVerified(t: Tx, id: string): Promise<void> {
  await t.none('UPDATE users SET email_verified_at = coalesce(email_verified_at, now()), updated_at = now() WHERE id = $1', [id]);
}

/**
 * Users for the operator console, newest first (at most 500), whose email or
 * name contains `term` (LIKE wildcards in it are taken literally); all without one.
 */
export function searchUsers(q: Db | Tx, term: string | undefined): Promise<Omit<User, 'passwordHash'>[]> {
  return q.manyOrNone<Omit<User, 'passwordHash'>>(
    `SELECT id, email, first_name AS "firstName", last_name AS "lastName", role, email_verified_at AS "emailVerifiedAt", created_at AS "createdAt"
       FROM users
      WHERE $1::text IS NULL OR email ILIKE $1 OR (first_name || ' ' || last_name) ILIKE $1
      ORDER BY created_at DESC LIMIT 500`,
    [term ? `%${term.replace(/[\\%_]/g, (c) => `\\${c}`)}%` : null],
  );
}
