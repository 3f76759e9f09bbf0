/**
 * The platform's environment, validated once with zod. Every process (host,
 * function, CLI) reads its settings from here and nowhere else, so a missing
 * or malformed variable stops start-up with a message naming it.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { isKnownVersion, KNOWN_ODOO_VERSIONS } from './odoo/contract.ts';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const bool = z
  .enum(['true', 'false', '1', '0', ''])
  .default('false')
  .transform((v) => v === 'true' || v === '1');
const port = (d: number) => z.coerce.number().int().min(0).max(65535).default(d);
const url = (d: string) => z.url().default(d);
const optionalUrl = () => z.url().optional();

export const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Local state: generated secrets, instance data, backups, caught mail. */
  DATA_DIR: z.string().min(1).default('.data'),

  /** Superuser connection used only by `platform migrate` to create databases and roles. */
  DATABASE_ADMIN_URL: url('postgres://postgres@127.0.0.1:5432/postgres'),
  /** Host and port the service roles connect to (their credentials come from secrets). */
  DATABASE_HOST: z.string().default('127.0.0.1'),
  DATABASE_PORT: port(5432),
  /** Prefix for every database and role name; tests use a unique one per run. */
  DB_NAMESPACE: z
    .string()
    .regex(/^[a-z0-9_]*$/, 'lowercase letters, digits and _ only')
    .default(''),
  DB_POOL_SIZE: z.coerce.number().int().min(1).max(100).default(5),
  AUTH_DB_PASSWORD: z.string().min(16).optional(),
  BILLING_DB_PASSWORD: z.string().min(16).optional(),
  INSTANCE_DB_PASSWORD: z.string().min(16).optional(),
  COMMUNICATION_DB_PASSWORD: z.string().min(16).optional(),
  AUDIT_DB_PASSWORD: z.string().min(16).optional(),
  AUDIT_OWNER_DB_PASSWORD: z.string().min(16).optional(),
  /** Days the audit log keeps entries (never fewer than 30: the database refuses to prune younger ones). */
  AUDIT_RETENTION_DAYS: z.coerce.number().int().min(30).default(400),
  PROVISIONER_DB_PASSWORD: z.string().min(16).optional(),

  REDIS_URL: url('redis://127.0.0.1:6379'),
  REDIS_PREFIX: z.string().default('saasodoo:'),
  RABBITMQ_URL: url('amqp://guest:guest@127.0.0.1:5672'),
  /** Name prefix of the broker's exchanges and queues (tests isolate with it). */
  BROKER_NAME: z
    .string()
    .regex(/^[a-zA-Z0-9_.-]+$/)
    .default('saasodoo'),
  /** Where functions send CloudEvents (Knative injects it; the host sets its ingress). */
  K_SINK: optionalUrl(),

  GATEWAY_PORT: port(8080),
  BROKER_PORT: port(8081),
  KILLBILL_SIM_PORT: port(8082),
  SMTP_PORT: port(2525),
  PORTAL_PORT: port(3000),
  FUNCTION_PORT_BASE: port(8100),
  /** The local host's operator listener (`platform status`, `platform invoke --cloudevent`), on 127.0.0.1 only. */
  OPERATOR_PORT: port(8084),
  /** Bearer token of the operator listener; generated into DATA_DIR when unset. */
  OPERATOR_TOKEN: z.string().min(16).optional(),
  /** How the portal and CLI reach the functions. */
  GATEWAY_URL: url('http://127.0.0.1:8080'),
  /** Key sealing the portal's session cookie; generated into DATA_DIR when unset. */
  PORTAL_SESSION_SECRET: z.string().min(32).optional(),
  /**
   * Shared by the gateway and the portal's server side: only a request
   * carrying it may set X-Forwarded-For (the browser's address). Generated
   * into DATA_DIR when unset.
   */
  GATEWAY_PROXY_TOKEN: z.string().min(16).optional(),
  /** Public address of the portal: links in mails point here. */
  PUBLIC_URL: url('http://localhost:3000'),
  /** Instances live at {subdomain}.{BASE_DOMAIN}. */
  BASE_DOMAIN: z.string().default('localhost'),
  INSTANCE_URL_SCHEME: z.enum(['http', 'https']).default('http'),
  /** DNS servers that check custom domains (`host[:port]`, comma-separated); default: the system's. */
  DNS_SERVERS: z
    .string()
    .optional()
    .transform((s) =>
      s
        ? s
            .split(',')
            .map((x) => x.trim())
            .filter(Boolean)
        : [],
    ),

  /** A real Kill Bill; unset means the host starts its simulator. */
  KILLBILL_URL: optionalUrl(),
  KILLBILL_API_KEY: z.string().default('saasodoo'),
  KILLBILL_API_SECRET: z.string().default('saasodoo-secret'),
  KILLBILL_USERNAME: z.string().default('admin'),
  KILLBILL_PASSWORD: z.string().default('password'),
  /** Push-notification retry schedule of the Kill Bill simulator (Kill Bill's default; tests shorten it). */
  KILLBILL_SIM_RETRIES: z
    .string()
    .regex(/^\d+(ms|s|m|h|d)(,\d+(ms|s|m|h|d))*$/, 'e.g. 15m,30m,2h,12h,1d')
    .default('15m,30m,2h,12h,1d'),
  /** Set by the host when KILLBILL_URL is its simulator (accounts then get the simulator's test payment method). */
  KILLBILL_SIMULATOR: bool,
  /**
   * The operator's Stripe secret key, the one configured in the killbill-stripe plugin: the platform only reads
   * Checkout Sessions with it (their hosted-page url). The host sets a test key for its simulator.
   */
  STRIPE_SECRET_KEY: z
    .string()
    .regex(/^(sk|rk)_(test|live)_\S+$/, 'a Stripe secret key (sk_test_… or sk_live_…)')
    .optional(),
  /** Where the `stripe` package connects; unset = api.stripe.com. The host points it at the simulator's Stripe stand-in. */
  STRIPE_API_URL: optionalUrl(),
  /** Port of the simulator's Stripe stand-in (its API subset and hosted card page). */
  STRIPE_SIM_PORT: port(8086),
  /** Timeout of each call to Kill Bill, in milliseconds. */
  KILLBILL_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
  /** Address Kill Bill posts notifications to (the gateway's webhook-intake), without query string. */
  KILLBILL_CALLBACK_BASE: optionalUrl(),
  /** Per-tenant token Kill Bill puts in the callback URL; generated locally when unset. */
  WEBHOOK_TOKEN: z.string().min(16).optional(),

  /** A real SMTP server; unset means the host starts its catcher. */
  SMTP_URL: optionalUrl(),
  MAIL_FROM: z.string().default('SaaSOdoo <no-reply@saasodoo.localhost>'),
  /** Who sends the mails, as printed in every mail's footer (the operator running this platform). */
  OPERATOR_NAME: z.string().trim().min(1).max(100).default('SaaSOdoo'),
  /** The operator's postal address for the mail footer (commercial mail must carry one); lines separated by commas. */
  OPERATOR_POSTAL_ADDRESS: z.string().trim().min(1).max(300).default('SaaSOdoo, 1 Example Street, 1000 Brussels, Belgium'),
  /** Where customers get help, printed in every mail's footer: an address or a web page. */
  SUPPORT_CONTACT: z.string().trim().min(1).max(200).default('support@saasodoo.localhost'),
  /** Where operator alerts go (a database pool turned unhealthy, or recovered); default SUPPORT_CONTACT when that is an address. */
  OPERATOR_EMAIL: z.email().optional(),
  /**
   * How long the email function keeps trying to record a mail the SMTP server
   * accepted when PostgreSQL dropped before the commit (a restart takes a few
   * seconds). Keep it under the triggers' 30 s delivery timeout: past that the
   * broker redelivers while we still retry, and that copy may send again.
   */
  MAIL_RECORD_RETRY_MS: z.coerce.number().int().min(0).default(20_000),

  TEST_PLANS: bool,
  RUNTIME_DRIVER: z.enum(['local', 'kubernetes', 'docker']).default('local'),
  /** Docker driver: the engine (`unix:///var/run/docker.sock`, a socket path, or `tcp://host:port`); default the local socket. */
  DOCKER_HOST: z
    .string()
    .regex(/^(unix:\/\/\/|\/|tcp:\/\/|http:\/\/)/, 'unix:///path, /path or tcp://host:port')
    .optional(),
  /** Docker driver: the Odoo image template (`{version}` replaced), pulled when missing. */
  ODOO_IMAGE: z.string().min(1).default('odoo:{version}'),
  /**
   * Docker driver: `host` (each instance listens on its own 127.0.0.1 ports and reaches PostgreSQL
   * as this machine does; Linux only) or the name of a bridge network (created when missing; ports
   * published on 127.0.0.1 only, PostgreSQL reached at DOCKER_DB_HOST).
   */
  DOCKER_NETWORK: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/)
    .default('host'),
  /** Docker driver on a bridge network: PostgreSQL's address from inside a container when DATABASE_HOST is loopback (host-gateway by default). */
  DOCKER_DB_HOST: z.string().min(1).default('host.docker.internal'),
  /** Odoo versions on sale, comma-separated, each one the Odoo contract knows (platform/src/odoo/contract.ts). */
  ODOO_VERSIONS: z
    .string()
    .default('17,18,19')
    .transform((s, ctx) => {
      const list = [
        ...new Set(
          s
            .split(',')
            .map((v) => v.trim())
            .filter(Boolean),
        ),
      ];
      const bad = list.filter((v) => !isKnownVersion(v));
      if (!list.length || bad.length) ctx.addIssue({ code: 'custom', message: `comma-separated, each one of ${KNOWN_ODOO_VERSIONS.join(', ')}` });
      return list;
    }),
  /** The command that runs real Odoo locally (`-c odoo.conf` and the contract's flags are appended); unset runs the stand-in. */
  ODOO_COMMAND: z.string().optional(),
  /**
   * Fast init (instances/templates.ts): a new instance's database is a copy of a template
   * database that Odoo's init made once per server, version, language and demo flag.
   * `false` runs Odoo's init for every instance.
   */
  ODOO_TEMPLATES: z
    .enum(['true', 'false', '1', '0'])
    .default('true')
    .transform((v) => v === 'true' || v === '1'),
  /** Instances the platform's own PostgreSQL takes as the first shared pool (`default`, instances/pools.ts) when registered. */
  DEFAULT_POOL_CAPACITY: z.coerce.number().int().min(1).default(500),
  PROVISION_READY_TIMEOUT: z.coerce.number().int().positive().default(300),
  /** Key sealing instance secrets at rest (db passwords, the not-yet-shown admin password); generated locally when unset. */
  INSTANCE_SECRETS_KEY: z.string().min(32).optional(),
  /** Tests only (ignored unless NODE_ENV=test): make provisioning fail at this step. */
  /** Tests only (with NODE_ENV=test): a database move (instances/move.ts) fails at this step. */
  MOVE_FAIL_AT_STEP: z.string().optional(),
  PROVISION_FAIL_AT_STEP: z.string().optional(),
  HEALTH_INTERVAL_SECONDS: z.coerce.number().int().positive().default(30),
  /** health-probe re-measures each instance's storage usage (runtime usage()) this often, on its tick. */
  STORAGE_USAGE_MINUTES: z.coerce.number().int().min(0).default(10),
  K8S_NAMESPACE: z.string().default('saasodoo-instances'),
  /** Loopback port of the local runtime daemon (owns the local instance processes). */
  LOCAL_RUNTIME_PORT: port(8083),
  /** First port handed to local instance processes (and docker instances: their loopback ports). */
  LOCAL_INSTANCE_PORT_BASE: port(9100),
  /** Where backups live (a volume shared with the backup Jobs on Kubernetes); default DATA_DIR/backups. */
  BACKUP_DIR: z.string().optional(),
  /** Kubernetes: storage class of the instance PVCs (the quota is the PVC size). */
  K8S_STORAGE_CLASS: z.string().default('cephfs'),
  /** Kubernetes: Odoo image template ({version}). */
  K8S_ODOO_IMAGE: z.string().default('odoo:{version}'),
  /** Kubernetes: image with pg_dump/pg_restore/tar for backup and restore Jobs. */
  K8S_BACKUP_IMAGE: z.string().default('postgres:16'),
  /** Kubernetes: PVC (ReadWriteMany) holding backups, mounted by Jobs and by functions at BACKUP_DIR. */
  K8S_BACKUP_PVC: z.string().default('saasodoo-backups'),
  /** Kubernetes: cert-manager ClusterIssuer for instance certificates. */
  K8S_CLUSTER_ISSUER: z.string().default('letsencrypt'),
  /** Key signing backup download links; generated into DATA_DIR when unset. */
  BACKUP_LINK_KEY: z.string().min(16).optional(),

  /** EdDSA signing key (PKCS8 PEM) and kid; generated into DATA_DIR when unset. */
  JWT_PRIVATE_KEY: z.string().optional(),
  JWT_KID: z.string().optional(),
  /** Extra public keys still accepted during rotation: JSON array of JWKs with kid. */
  JWT_PUBLIC_KEYS: z.string().optional(),
  JWT_ISSUER: z.string().default('saasodoo'),
  JWT_AUDIENCE: z.string().default('saasodoo-api'),
});

export type Config = z.infer<typeof envSchema> & { dataDir: string };

export class ConfigError extends Error {
  constructor(readonly issues: { variable: string; message: string }[]) {
    super('Invalid environment:\n' + issues.map((i) => `  ${i.variable}: ${i.message}`).join('\n'));
    this.name = 'ConfigError';
  }
}

/** Parses an environment; throws ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // Treat empty strings as unset so `FOO= npm start` falls back to the default.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== ''));
  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => ({ variable: String(i.path[0] ?? '?'), message: i.message })));
  }
  return { ...parsed.data, dataDir: path.resolve(repoRoot, parsed.data.DATA_DIR) };
}

let cached: Config | undefined;

/**
 * The process-wide config, parsed on first use. A bad environment is fatal:
 * the message names the variable and the process exits 1 rather than run
 * half-configured.
 */
export function config(): Config {
  if (!cached) {
    try {
      cached = loadConfig();
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(`${err.message}\n`);
        process.exit(1);
      }
      throw err;
    }
  }
  return cached;
}

/** Forget the parsed config (tests that change the environment). */
export function resetConfig(): void {
  cached = undefined;
}
