/**
 * Provisioning (platform/src/instances/README.md 3): the steps that take an instance from "paid for" to
 * running. Each step is idempotent, so a redelivered command or an admin
 * retry simply runs the remaining steps again; each is reported as
 * `instance.progress`. A failure parks the instance in `error` with the step
 * and reason and sends `instance.failed`; nothing retries by itself.
 */
import { config } from '../config.ts';
import { db } from '../db/index.ts';
import { HttpError, isUnavailable } from '../errors.ts';
import { enqueue, transact } from '../outbox.ts';
import { log } from '../log.ts';
import { runtime } from '../runtime/index.ts';
import { dropInstanceDatabase, ensureInstanceDatabase, instanceDatabaseExists, serverAdmin } from './database.ts';
import { adoptCopy, copySqlFor, templateFor, templateNamed, whileTemplateKept } from './templates.ts';
import { placeInstance, poolOf } from './pools.ts';
import { managedByOperator, placeDedicated, wantsDedicated } from './dedicated.ts';
import { tenantConnectionLimit } from './db-limits.ts';
import { loadOwned, type Command } from './command.ts';
import { transition, type Cause } from './history.ts';
import { withInstanceLock } from './locks.ts';
import { instanceDbNames, instanceUrl, odooBaseUrl } from './names.ts';
import { reportProgress, safeReason } from './progress.ts';
import { recordUsage } from './quota.ts';
import { getInstance, updateInstance, type InstanceRow } from './repository.ts';
import { quotaBytes, specOf } from './runtime-spec.ts';
import { randomPassword, seal, unseal } from './secrets.ts';
import { configureOdoo, createOdooExtensions, odooDatabaseState, odooReadyProblem } from './odoo.ts';
import { createDatabaseSql, odooPasswordHash, RANDOM_SECRET_PBKDF2_ROUNDS } from '../odoo/contract.ts';
import { configureCopy, copyOriginal } from './staging-copy.ts';

export const PROVISION_STEPS = ['claim', 'database', 'storage', 'quota', 'odoo_init', 'odoo_configure', 'runtime', 'wait_ready', 'ready'] as const;
export type ProvisionStep = (typeof PROVISION_STEPS)[number];

export function isProvisionStep(s: string | null | undefined): s is ProvisionStep {
  return !!s && (PROVISION_STEPS as readonly string[]).includes(s);
}

export type ProvisionCommand = Command<{ instanceId: string; customerId: string; fromStep?: string }>;

/** Tests only: NODE_ENV=test and PROVISION_FAIL_AT_STEP=<step> make that step fail. */
function injectedFailure(step: ProvisionStep): void {
  const c = config();
  if (c.NODE_ENV === 'test' && c.PROVISION_FAIL_AT_STEP === step) throw new Error(`injected failure at step ${step}`);
}

const STEP_RETRY_DELAYS_MS = [1000, 2000, 4000, 8000, 16000];

/**
 * Runs a provisioning step, again after a pause when it failed for a
 * transient reason (a dependency unreachable or full just then: errors.ts
 * isUnavailable, the same test that answers 503), up to ~30 s in all. Steps are
 * idempotent (a redelivered command runs them again), and without this a
 * database restart or a full connection pool at the wrong second parked a
 * new customer's instance in `error` for good: the fault suite saw three in
 * one run on a loaded machine.
 */
export async function retryTransient<T>(fn: () => Promise<T>, onRetry?: (err: unknown, attempt: number) => void, delays = STEP_RETRY_DELAYS_MS): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= delays.length || !isUnavailable(err)) throw err;
      onRetry?.(err, attempt + 1);
      await new Promise((r) => setTimeout(r, delays[attempt]));
    }
  }
}

/**
 * Handles `instance.provision`. Refuses (400, never retried) a command whose
 * customer does not own the instance: a forged or mismatched subscription
 * must not provision someone else's instance.
 */
export async function provision(cmd: ProvisionCommand): Promise<void> {
  const { instanceId, customerId } = cmd.data;
  await loadOwned(cmd);
  if (cmd.data.fromStep !== undefined && !isProvisionStep(cmd.data.fromStep)) {
    throw HttpError.badRequest('Unknown step', { fromStep: `one of ${PROVISION_STEPS.join(', ')}` });
  }
  const cause: Cause = { eventId: cmd.eventId, eventType: cmd.eventType, actor: 'provision', traceparent: cmd.traceparent };
  await withInstanceLock(instanceId, async () => {
    const claimed = await claim(instanceId, cause);
    if (!claimed) return;
    let row: InstanceRow = claimed;
    const first = Math.max(1, cmd.data.fromStep ? PROVISION_STEPS.indexOf(cmd.data.fromStep as ProvisionStep) : 1);
    let step: ProvisionStep = 'claim';
    try {
      for (let i = first; i < PROVISION_STEPS.length; i++) {
        const current = PROVISION_STEPS[i] as Exclude<ProvisionStep, 'claim'>;
        step = current;
        await reportProgress(row, 'provision', current, i + 1, PROVISION_STEPS.length, cmd.traceparent);
        injectedFailure(current);
        const before = row;
        row = await retryTransient(
          () => STEPS[current](before, cause),
          (err, n) => cmd.log.warn({ instanceId, step: current, attempt: n, reason: safeReason(err) }, 'provisioning step retried'),
        );
      }
    } catch (err) {
      const reason = safeReason(err);
      cmd.log.warn({ instanceId, step, reason }, 'provisioning failed');
      await transact('instance', async (t) => {
        const cur = (await getInstance(t, instanceId, true))!;
        await transition(t, cur, 'error', { ...cause, reason: `provisioning failed at ${step}: ${reason}` }, { error_step: step, error_reason: reason });
        await enqueue(t, 'instance.failed', { instanceId, customerId, step, reason }, { subject: instanceId, traceparent: cmd.traceparent });
      });
    }
  });
}

/**
 * Step 1: status `provisioning`. Returns undefined when there is nothing to
 * do: already running, terminated, or parked in `error` (only an admin retry,
 * which sets `provisioning` itself, resumes a failed instance). A row whose
 * create has not finished (no subscription id yet) may still be removed by
 * it: 409, retried by the broker once create has either finished or given up.
 */
async function claim(instanceId: string, cause: Cause): Promise<InstanceRow | undefined> {
  const row = await transact('instance', async (t) => {
    const cur = (await getInstance(t, instanceId, true))!;
    if (cur.status === 'provisioning') return cur;
    if (cur.status !== 'pending_payment') return undefined;
    if (!cur.subscription_id) throw new HttpError(409, 'busy', 'The instance is still being created; retry later');
    return transition(t, cur, 'provisioning', { ...cause, reason: 'provisioning started' }, { error_step: null, error_reason: null });
  });
  if (row) await reportProgress(row, 'provision', 'claim', 1, PROVISION_STEPS.length, cause.traceparent);
  return row;
}

type StepFn = (row: InstanceRow, cause: Cause) => Promise<InstanceRow>;

const STEPS: Record<Exclude<ProvisionStep, 'claim'>, StepFn> = {
  async database(row) {
    const names = instanceDbNames(row.id, row.customer_id);
    // Placement first (pools.ts): nothing is created anywhere when no shared server has room.
    const dedicated = wantsDedicated(row.plan);
    const shared = dedicated ? undefined : await placeInstance(row.id);
    let current = (await getInstance(db('instance'), row.id))!;
    if (!row.db_password_sealed || row.db_name !== names.database || row.db_role !== names.role || !row.odoo_master_hash) {
      current = await updateInstance(db('instance'), row.id, {
        db_name: names.database,
        db_role: names.role,
        db_password_sealed: row.db_password_sealed ?? seal(randomPassword()),
        // Odoo's master password (admin_passwd): random, only its hash kept; nobody needs the clear text
        // (the database manager is off: --no-database-list).
        odoo_master_hash: row.odoo_master_hash ?? (await odooPasswordHash(randomPassword(), { rounds: RANDOM_SECRET_PBKDF2_ROUNDS })),
      });
    }
    // A plan promising a dedicated server gets one of its own (dedicated.ts), made with the credentials just recorded
    // (CloudNativePG's bootstrap makes the role and database from them).
    const pool = shared ?? (await placeDedicated(current));
    const admin = serverAdmin(pool);
    current = (await getInstance(db('instance'), row.id))!;
    const spec = specOf(current);
    if (managedByOperator(pool)) {
      // CloudNativePG made the database, owned by the tenant's role with its password, from the instance's Secret.
      await createOdooExtensions(spec.database);
      return current;
    }
    // With a template ready on this server, the database is its copy from the start (odoo_init then adopts it).
    const fresh = !(await instanceDatabaseExists(names, admin)).database;
    // A staging copy's database is the original's restored into it (odoo_init): it starts empty.
    const template = fresh && !row.staging_of ? await templateFor(spec, { make: false, timeoutMs: config().PROVISION_READY_TIMEOUT * 1000 }) : undefined;
    await ensureInstanceDatabase(
      {
        role: names.role,
        database: names.database,
        password: spec.database.password,
        connectionLimit: tenantConnectionLimit(spec.resources),
        createSql: template ? copySqlFor(spec, template) : createDatabaseSql(names.database, names.role),
      },
      admin,
    );
    if (template) current = await updateInstance(db('instance'), row.id, { odoo_template: template.database });
    await createOdooExtensions(spec.database);
    return current;
  },
  async storage(row) {
    // Creates the storage (and the stopped runtime objects) without starting anything.
    await (await runtime()).apply(specOf(row), { replicas: 0 });
    return row;
  },
  async quota(row, cause) {
    const rt = await runtime();
    await rt.setQuota(row.id, quotaBytes(row));
    // The first figure for the API's storage bar; health-probe refreshes it later. Best effort: no new way to fail.
    await rt
      .usage(row.id)
      .then((u) => recordUsage({ log, traceparent: cause.traceparent }, row.id, row.customer_id, u))
      .catch((err) => log.warn({ instanceId: row.id, reason: safeReason(err) }, 'storage usage not measured'));
    return row;
  },
  /**
   * An initialised Odoo database, unless a previous attempt made it: a copy
   * of the server's template database (templates.ts: made by Odoo's own init
   * on first need), adopted by the tenant role, with its filestore; else
   * Odoo's own `-i base --stop-after-init`. A copy made by the database step
   * (a template was ready then) is adopted here.
   */
  async odoo_init(row, cause) {
    // A staging copy: the original's data from a fresh backup, neutralised (staging.ts), never Odoo's init.
    if (row.staging_of) return copyOriginal(row, cause);
    const spec = specOf(row);
    const names = { role: spec.database.user, database: spec.database.name };
    const timeoutMs = config().PROVISION_READY_TIMEOUT * 1000;
    const rt = await runtime();
    let current = row;
    const pool = await poolOf(row);
    const admin = serverAdmin(pool);
    // A CloudNativePG server made the database itself (and the platform cannot ask it as an admin).
    const exists = managedByOperator(pool) || (await instanceDatabaseExists(names, admin)).database;
    // Until adopted, a copy's tables are the template role's: adopt before reading them.
    if (exists && current.odoo_template) await adoptCopy(spec, templateNamed(current.odoo_template));
    if (!exists || (await odooDatabaseState(spec.database)) !== 'installed') {
      const template = await templateFor(spec, { make: true, timeoutMs });
      const ensure = (createSql: string) =>
        ensureInstanceDatabase(
          {
            ...names,
            password: spec.database.password,
            connectionLimit: tenantConnectionLimit(spec.resources),
            createSql,
          },
          admin,
        );
      if (template) {
        // The empty database of the database step makes way for the copy (nothing was ever in it).
        await dropInstanceDatabase(names, { keepRole: true }, admin);
        await ensure(copySqlFor(spec, template));
        current = await updateInstance(db('instance'), row.id, { odoo_template: template.database });
        await adoptCopy(spec, template);
      } else {
        if (!exists) {
          await ensure(createDatabaseSql(names.database, names.role));
          await createOdooExtensions(spec.database);
        }
        if (current.odoo_template) current = await updateInstance(db('instance'), row.id, { odoo_template: null });
        await rt.initialize(spec, timeoutMs);
        const state = await odooDatabaseState(spec.database);
        if (state !== 'installed') throw new Error(`Odoo's init finished but the database is ${state === 'missing' ? 'not initialised' : 'only partly initialised'}`);
        return current;
      }
    }
    const template = current.odoo_template;
    if (template && !(await whileTemplateKept(spec, template, () => rt.seedFilestore(spec, template)))) {
      // The template was made again since the copy: the copy holds nothing of the customer's yet, so it is made again.
      await dropInstanceDatabase(names, { keepRole: true }, admin);
      return STEPS.odoo_init(await updateInstance(db('instance'), row.id, { odoo_template: null }), cause);
    }
    return current;
  },
  /**
   * Before anyone can reach Odoo: the customer's login and password (Odoo's
   * own pbkdf2-sha512 hash of the one-time password, still sealed for its
   * single display), names, language and the frozen URL. Idempotent.
   */
  async odoo_configure(row) {
    // A copy keeps the original's users and passwords; it gets Odoo's copy reset and its own address.
    if (row.staging_of) return configureCopy(row);
    if (!row.odoo_login) throw new Error('the instance has no Odoo login (created before logins were recorded)');
    const passwordHash = row.admin_password_sealed
      ? await odooPasswordHash(unseal(row.admin_password_sealed))
      : row.admin_password_hash?.startsWith('$pbkdf2-sha512$')
        ? row.admin_password_hash
        : undefined;
    if (!passwordHash) throw new Error('the instance has no Odoo password to set');
    await configureOdoo(specOf(row).database, {
      login: row.odoo_login,
      passwordHash,
      userName: row.odoo_user_name || row.odoo_login,
      email: row.odoo_login,
      companyName: row.name,
      baseUrl: odooBaseUrl(row),
    });
    return updateInstance(db('instance'), row.id, { admin_password_hash: passwordHash });
  },
  async runtime(row) {
    await (await runtime()).apply(specOf(row), { replicas: 1 });
    return row;
  },
  /** The runtime's readiness, then provisioning's (platform/src/instances/README.md 3): base installed and /web/login answering 200. */
  async wait_ready(row) {
    const rt = await runtime();
    const deadline = Date.now() + config().PROVISION_READY_TIMEOUT * 1000;
    await rt.waitReady(row.id, config().PROVISION_READY_TIMEOUT * 1000);
    // Odoo is usually ready when the runtime says so: check again soon, then less and less often (at most every 500 ms).
    for (let pause = 25; ; pause = Math.min(pause * 2, 500)) {
      const health = (await rt.status(row.id)).healthUrl;
      const problem = health ? await odooReadyProblem(specOf(row).database, new URL(health).origin) : 'the runtime gives no address for Odoo';
      if (!problem) return row;
      if (Date.now() >= deadline) throw new Error(`not ready after ${config().PROVISION_READY_TIMEOUT} s: ${problem}`);
      await new Promise((r) => setTimeout(r, pause));
    }
  },
  async ready(row, cause) {
    const done = await transact('instance', async (t) => {
      const cur = (await getInstance(t, row.id, true))!;
      const next = await transition(
        t,
        cur,
        'running',
        { ...cause, reason: 'provisioned' },
        {
          error_step: null,
          error_reason: null,
          health: 'unknown',
          health_failures: 0,
          previous_status: null,
        },
      );
      const original = cur.staging_of ? await getInstance(t, cur.staging_of) : undefined;
      const stagingOf = original && cur.staging_copied_at ? { name: original.name, copiedAt: cur.staging_copied_at.toISOString() } : undefined;
      await enqueue(
        t,
        'instance.ready',
        { instanceId: row.id, customerId: row.customer_id, url: instanceUrl(row.subdomain), name: row.name, stagingOf },
        { subject: row.id, traceparent: cause.traceparent },
      );
      return next;
    });
    return done;
  },
};
