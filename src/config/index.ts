/**
 * The one place that reads the environment. Everything else receives a frozen
 * `Config`. A bad value becomes a `ConfigError` whose message is one line that
 * names the variable and what is wrong with it.
 */
import { isIP } from "node:net";
import { z } from "zod";

const port = z.coerce
  .number({ message: "must be a number" })
  .int("must be an integer")
  .min(1, "must be between 1 and 65535")
  .max(65535, "must be between 1 and 65535");

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === "" ? undefined : v.trim()));

function urlWithProtocols(protocols: string[]) {
  return optionalString.refine(
    (v) => {
      if (v === undefined) return true;
      try {
        const u = new URL(v);
        return protocols.includes(u.protocol);
      } catch {
        return false;
      }
    },
    { message: `must be a URL starting with ${protocols.map((p) => `${p}//`).join(" or ")}` },
  );
}

const commaList = optionalString.transform((v) =>
  v === undefined ? [] : v.split(",").map((s) => s.trim()).filter((s) => s.length > 0),
);

/** Seconds in "30d", "12h", "15m", "90s" or plain seconds ("900"); undefined for anything else or zero. */
export function parseDurationSeconds(text: string): number | undefined {
  const m = /^(\d+)\s*([smhd]?)$/.exec(text.trim());
  const seconds = m ? Number(m[1]) * { "": 1, s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as "" | "s" | "m" | "h" | "d"] : 0;
  return seconds > 0 ? seconds : undefined;
}

/** A duration (parseDurationSeconds); undefined when unset. */
const duration = optionalString.transform((v, ctx) => {
  if (v === undefined) return undefined;
  const seconds = parseDurationSeconds(v);
  if (seconds !== undefined) return seconds;
  ctx.addIssue({ code: "custom", message: 'must be a duration such as "30d", "12h" or seconds' });
  return z.NEVER;
});

/** `claim=value`; the claim name may itself be a URL (namespaced claims). */
const adminClaim = optionalString.transform((v, ctx) => {
  if (v === undefined) return undefined;
  const at = v.indexOf("=");
  if (at > 0 && at < v.length - 1) return { claim: v.slice(0, at), value: v.slice(at + 1) };
  ctx.addIssue({ code: "custom", message: 'must be claim=value, e.g. "role=admin"' });
  return z.NEVER;
});

/** Optional; when set, a whole number above zero. */
const positiveInteger = z.coerce.number({ message: "must be a number" }).int("must be a positive integer").positive("must be a positive integer").optional();

/**
 * TRUST_PROXY: unset or "false" believes no X-Forwarded-For; else the proxies' addresses, CIDRs or
 * proxy-addr's names (loopback, linklocal, uniquelocal). "true" and hop counts are refused: they would
 * believe a client that talks to Herald directly (Fastify itself ignores hop counts for that reason).
 */
const trustProxy = optionalString
  .refine((v) => v === undefined || v === "false" || v.split(",").every((p) => isProxyAddress(p.trim())), {
    message: "must be a comma-separated list of proxy addresses or CIDRs (true and hop counts would believe any client)",
  })
  .transform((v): false | readonly string[] => (v === undefined || v === "false" ? false : Object.freeze(v.split(",").map((p) => p.trim()))));

function isProxyAddress(p: string): boolean {
  if (["loopback", "linklocal", "uniquelocal"].includes(p)) return true;
  const [address = "", bits, ...rest] = p.split("/");
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  return bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128));
}

const envSchema = z.object({
  NODE_ENV: z.enum(["development", "production", "test"]).default("development"),
  DATABASE_URL: urlWithProtocols(["postgres:", "postgresql:"]),
  REDIS_URL: urlWithProtocols(["redis:", "rediss:"]),
  JWT_SECRET: optionalString.refine((v) => v === undefined || v.length >= 32, {
    message: "must be at least 32 characters",
  }),
  JWKS_URL: urlWithProtocols(["https:", "http:"]),
  JWT_ISSUER: optionalString,
  JWT_AUDIENCE: optionalString,
  HERALD_API_KEYS: commaList,
  JWT_ADMIN_CLAIM: adminClaim,
  HERALD_MAX_TOKEN_LIFETIME: duration,
  EMAIL_UNSEEN_DELAY: duration,
  HERALD_DEMO_TOKENS: optionalString.refine((v) => v === undefined || v === "true" || v === "false", {
    message: 'must be "true" or "false"',
  }),
  EMAIL_HOST: optionalString,
  EMAIL_PORT: port.optional(),
  EMAIL_SECURE: optionalString.refine((v) => v === undefined || v === "true" || v === "false", {
    message: 'must be "true" or "false"',
  }),
  EMAIL_USER: optionalString,
  EMAIL_PASS: optionalString,
  EMAIL_FROM: optionalString,
  WEBSOCKET_URL: urlWithProtocols(["ws:", "wss:"]),
  WEBSOCKET_PORT: port.default(3001),
  HOST: optionalString,
  APP_URL: urlWithProtocols(["http:", "https:"]),
  CORS_ORIGINS: commaList,
  DATA_DIR: optionalString,
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  HERALD_RATE_LIMIT_PER_MINUTE: z.coerce
    .number({ message: "must be a number" })
    .int("must be an integer")
    .positive("must be positive")
    .default(6000),
  HERALD_ADMIN_RATE_LIMIT_PER_MINUTE: positiveInteger.default(100_000),
  HERALD_AUTH_FAILURE_RATE_LIMIT_PER_MINUTE: positiveInteger.default(30),
  TRUST_PROXY: trustProxy,
  HERALD_DIGEST_LEASE_MS: positiveInteger,
  HERALD_DIGEST_LEASE_SAFETY_MS: positiveInteger,
  HERALD_DIGEST_POLL_MS: positiveInteger,
  HERALD_DIGEST_RETRY_BASE_MS: positiveInteger,
  HERALD_DIGEST_RETRY_CAP_MS: positiveInteger,
  HERALD_DIGEST_MAX_ATTEMPTS: positiveInteger,
  HERALD_SMTP_TIMEOUT_MS: positiveInteger,
  HERALD_UNSUBSCRIBE_SECRET: optionalString.refine((v) => v === undefined || v.length >= 32, { message: "must be at least 32 characters" }),
  HERALD_MAX_CONNECTIONS_PER_USER: positiveInteger,
  HERALD_PRESENCE_HEARTBEAT_MS: positiveInteger,
  SMS_WEBHOOK_URL: urlWithProtocols(["http:", "https:"]),
  HERALD_PUSH_ALLOW_PRIVATE: optionalString.refine((v) => v === undefined || v === "true" || v === "false", { message: 'must be "true" or "false"' }),
  HERALD_PUSH_MAX_SUBSCRIPTIONS: positiveInteger,
  HERALD_PUSH_TIMEOUT_MS: positiveInteger,
  HERALD_WEBHOOK_SECRET: optionalString.refine((v) => v === undefined || (/^whsec_[A-Za-z0-9+/]+={0,2}$/.test(v) && Buffer.from(v.slice(6), "base64").length >= 24), {
    message: "must be whsec_ followed by at least 24 bytes in base64 (Standard Webhooks)",
  }),
  VAPID_PUBLIC_KEY: optionalString,
  VAPID_PRIVATE_KEY: optionalString,
  VAPID_SUBJECT: optionalString,
});

export interface Config {
  /** development, production or test; production refuses generated secrets. */
  readonly nodeEnv: "development" | "production" | "test";
  /** PostgreSQL connection string; undefined means embedded PGlite in `dataDir`. */
  readonly databaseUrl: string | undefined;
  /** Redis for cross-instance fan-out, cache and rate limits; undefined means in-process. */
  readonly redisUrl: string | undefined;
  /** HS256 secret; undefined outside production means "generate one in dataDir". */
  readonly jwtSecret: string | undefined;
  readonly jwksUrl: string | undefined;
  readonly jwtIssuer: string | undefined;
  readonly jwtAudience: string | undefined;
  /** Admin API keys accepted in `Authorization: Bearer` or `x-api-key`. */
  readonly apiKeys: readonly string[];
  /** The claim (and value) that makes a JWKS-issued token an admin; none by default. */
  readonly jwtAdminClaim: { readonly claim: string; readonly value: string } | undefined;
  /** Longest accepted exp - iat of a token, in seconds (default 30 days). */
  readonly maxTokenLifetimeSeconds: number;
  /** Print demo tokens at start: only on the generated-secret path or when asked, never in production. */
  readonly demoTokens: boolean;
  /** How long a normal/low notification may wait to be seen in-app before it is e-mailed (emailImmediate "unseen"; default 2 min). */
  readonly emailUnseenDelayMs: number;
  /** SMTP transport; undefined host means `.eml` files in `dataDir/outbox`. */
  readonly email: {
    readonly host: string | undefined;
    readonly port: number;
    readonly secure: boolean;
    readonly user: string | undefined;
    readonly pass: string | undefined;
    readonly from: string;
  };
  readonly port: number;
  readonly host: string;
  readonly websocketUrl: string;
  /** Base for links in e-mails and push messages. */
  readonly appUrl: string;
  readonly corsOrigins: readonly string[];
  readonly dataDir: string;
  readonly logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  /** Requests per minute per user (provider tokens) or per address (no valid credential), per limited route. */
  readonly rateLimitPerMinute: number;
  /** Requests per minute per admin credential (admin token or API key), all routes together. */
  readonly adminRateLimitPerMinute: number;
  /** Failed authentications per minute per address. */
  readonly authFailureRateLimitPerMinute: number;
  /** Whose X-Forwarded-For to believe: false (the socket's address is the client's) or the proxies' addresses/CIDRs. */
  readonly trustProxy: false | readonly string[];
  /**
   * The digest pipeline's timing knobs that are set (src/digests/tuning.ts
   * has the defaults): lease, its safety margin, scheduler poll, retry base
   * and cap, attempts, SMTP timeout. Lets tests and operators run real
   * processes with a lease of seconds.
   */
  readonly digestTuning: {
    readonly leaseMs?: number;
    readonly leaseSafetyMs?: number;
    readonly pollMs?: number;
    readonly retryBaseMs?: number;
    readonly retryCapMs?: number;
    readonly maxAttempts?: number;
    readonly smtpTimeoutMs?: number;
  };
  /** WebSocket knobs that are set (src/realtime/server.ts has the defaults): connections per user, presence heartbeat. */
  readonly realtime: {
    readonly maxConnectionsPerUser?: number;
    readonly presenceHeartbeatMs?: number;
  };
  readonly smsWebhookUrl: string | undefined;
  /** Web Push: send to loopback/private addresses (test receivers), subscriptions kept per user (oldest replaced), deadline of one job. */
  readonly push: { readonly allowPrivate: boolean; readonly maxSubscriptions: number; readonly timeoutMs: number };
  /** Signs outgoing webhooks (Standard Webhooks, `whsec_...`); undefined outside production means "generate one in dataDir". */
  readonly webhookSecret: string | undefined;
  readonly vapid: {
    readonly publicKey: string | undefined;
    readonly privateKey: string | undefined;
    readonly subject: string | undefined;
  };
  /** Signs one-click unsubscribe links; undefined means "derive from the JWT secret in use" (src/runtime.ts); required in production without JWT_SECRET. */
  readonly unsubscribeSecret: string | undefined;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Parses and validates an environment; throws `ConfigError` with one line on the first bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const variable = String(issue.path[0] ?? "environment");
    const raw = env[variable];
    const shown = raw === undefined ? "" : ` (got ${JSON.stringify(raw.length > 60 ? `${raw.slice(0, 60)}...` : raw)})`;
    const message = issue.code === "invalid_value" ? `must be one of ${issue.values.join(", ")}` : issue.message;
    throw new ConfigError(`Invalid environment variable ${variable}: ${message}${shown}`);
  }
  const e = parsed.data;
  if (e.NODE_ENV === "production" && e.JWT_SECRET === undefined && e.JWKS_URL === undefined) {
    throw new ConfigError("Invalid environment variable JWT_SECRET: required when NODE_ENV=production");
  }
  if (e.NODE_ENV === "production") {
    // Keys are compared whole, so a short one is guessable; never echo a key.
    if (e.HERALD_API_KEYS.some((k) => k.length < 32)) {
      throw new ConfigError("Invalid environment variable HERALD_API_KEYS: each key must be at least 32 characters when NODE_ENV=production");
    }
    // Without them, any token of the identity provider, for any application, would be accepted.
    if (e.JWKS_URL !== undefined && (e.JWT_AUDIENCE === undefined || e.JWT_ISSUER === undefined)) {
      const missing = e.JWT_AUDIENCE === undefined ? "JWT_AUDIENCE" : "JWT_ISSUER";
      throw new ConfigError(`Invalid environment variable ${missing}: JWT_AUDIENCE and JWT_ISSUER are required with JWKS_URL when NODE_ENV=production`);
    }
    // Unsubscribe links are signed with a key from HERALD_UNSUBSCRIBE_SECRET or JWT_SECRET; without both,
    // each instance would use its own DATA_DIR secret and links minted by one would fail on another.
    if (e.JWT_SECRET === undefined && e.HERALD_UNSUBSCRIBE_SECRET === undefined) {
      throw new ConfigError("Invalid environment variable HERALD_UNSUBSCRIBE_SECRET: required when NODE_ENV=production and JWT_SECRET is not set");
    }
    if (e.HERALD_DEMO_TOKENS === "true") {
      throw new ConfigError("Invalid environment variable HERALD_DEMO_TOKENS: not allowed when NODE_ENV=production (it prints an admin token)");
    }
  }
  if (e.NODE_ENV === "production" && e.SMS_WEBHOOK_URL !== undefined && e.HERALD_WEBHOOK_SECRET === undefined) {
    throw new ConfigError("Invalid environment variable HERALD_WEBHOOK_SECRET: required when NODE_ENV=production and SMS_WEBHOOK_URL is set");
  }
  if ((e.VAPID_PUBLIC_KEY === undefined) !== (e.VAPID_PRIVATE_KEY === undefined)) {
    throw new ConfigError("Invalid environment variable VAPID_PRIVATE_KEY: VAPID_PUBLIC_KEY and VAPID_PRIVATE_KEY go together");
  }
  const port = e.WEBSOCKET_PORT;
  const emailSecure = e.EMAIL_SECURE === undefined ? e.EMAIL_PORT === 465 : e.EMAIL_SECURE === "true";
  return Object.freeze({
    nodeEnv: e.NODE_ENV,
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    jwtSecret: e.JWT_SECRET,
    jwksUrl: e.JWKS_URL,
    jwtIssuer: e.JWT_ISSUER,
    jwtAudience: e.JWT_AUDIENCE,
    apiKeys: Object.freeze([...e.HERALD_API_KEYS]),
    jwtAdminClaim: e.JWT_ADMIN_CLAIM ? Object.freeze(e.JWT_ADMIN_CLAIM) : undefined,
    maxTokenLifetimeSeconds: e.HERALD_MAX_TOKEN_LIFETIME ?? 30 * 86_400,
    // A configured JWT_SECRET or JWKS is a real deployment: its admin token must not reach the logs.
    demoTokens:
      e.NODE_ENV !== "production" &&
      (e.HERALD_DEMO_TOKENS === undefined ? e.JWT_SECRET === undefined && e.JWKS_URL === undefined : e.HERALD_DEMO_TOKENS === "true"),
    emailUnseenDelayMs: (e.EMAIL_UNSEEN_DELAY ?? 120) * 1000,
    email: Object.freeze({
      host: e.EMAIL_HOST,
      port: e.EMAIL_PORT ?? 587,
      secure: emailSecure,
      user: e.EMAIL_USER,
      pass: e.EMAIL_PASS,
      from: e.EMAIL_FROM ?? "Herald <noreply@herald.local>",
    }),
    port,
    host: e.HOST ?? "0.0.0.0",
    websocketUrl: e.WEBSOCKET_URL ?? `ws://localhost:${port}`,
    appUrl: (e.APP_URL ?? `http://localhost:${port}`).replace(/\/$/, ""),
    corsOrigins: Object.freeze([...e.CORS_ORIGINS]),
    dataDir: e.DATA_DIR ?? "./data",
    logLevel: e.LOG_LEVEL,
    rateLimitPerMinute: e.HERALD_RATE_LIMIT_PER_MINUTE,
    adminRateLimitPerMinute: e.HERALD_ADMIN_RATE_LIMIT_PER_MINUTE,
    authFailureRateLimitPerMinute: e.HERALD_AUTH_FAILURE_RATE_LIMIT_PER_MINUTE,
    trustProxy: e.TRUST_PROXY,
    digestTuning: Object.freeze(
      Object.fromEntries(
        Object.entries({
          leaseMs: e.HERALD_DIGEST_LEASE_MS,
          leaseSafetyMs: e.HERALD_DIGEST_LEASE_SAFETY_MS,
          pollMs: e.HERALD_DIGEST_POLL_MS,
          retryBaseMs: e.HERALD_DIGEST_RETRY_BASE_MS,
          retryCapMs: e.HERALD_DIGEST_RETRY_CAP_MS,
          maxAttempts: e.HERALD_DIGEST_MAX_ATTEMPTS,
          smtpTimeoutMs: e.HERALD_SMTP_TIMEOUT_MS,
        }).filter(([, v]) => v !== undefined),
      ),
    ),
    realtime: Object.freeze({
      ...(e.HERALD_MAX_CONNECTIONS_PER_USER === undefined ? {} : { maxConnectionsPerUser: e.HERALD_MAX_CONNECTIONS_PER_USER }),
      ...(e.HERALD_PRESENCE_HEARTBEAT_MS === undefined ? {} : { presenceHeartbeatMs: e.HERALD_PRESENCE_HEARTBEAT_MS }),
    }),
    unsubscribeSecret: e.HERALD_UNSUBSCRIBE_SECRET,
    smsWebhookUrl: e.SMS_WEBHOOK_URL,
    webhookSecret: e.HERALD_WEBHOOK_SECRET,
    push: Object.freeze({
      // Private destinations only where test receivers live; production and development refuse them unless told.
      allowPrivate: e.HERALD_PUSH_ALLOW_PRIVATE === undefined ? e.NODE_ENV === "test" : e.HERALD_PUSH_ALLOW_PRIVATE === "true",
      maxSubscriptions: e.HERALD_PUSH_MAX_SUBSCRIPTIONS ?? 10,
      timeoutMs: e.HERALD_PUSH_TIMEOUT_MS ?? 10_000,
    }),
    vapid: Object.freeze({
      publicKey: e.VAPID_PUBLIC_KEY,
      privateKey: e.VAPID_PRIVATE_KEY,
      subject: e.VAPID_SUBJECT,
    }),
  });
}

/**
 * What a server sharing its database or Redis with other instances must be
 * given instead of generating into its own DATA_DIR (each instance would
 * otherwise make its own: a token from one is refused by the others, a push
 * subscription made through one cannot be signed for by the others). Only
 * `npm start` asks (src/main.ts): migrate, backup and the library do not.
 * Throws a ConfigError whose one line says why.
 */
export function requireSharedSecrets(config: Config): void {
  const shared = config.databaseUrl !== undefined ? "database" : config.redisUrl !== undefined ? "Redis" : undefined;
  if (shared === undefined) return;
  const why = (what: string, so: string) =>
    new ConfigError(`several instances share this ${shared}: set ${what} so ${so} (\`npm run herald -- secrets\` prints new values)`);
  if (config.jwtSecret === undefined && config.jwksUrl === undefined) {
    throw why("JWT_SECRET", "a token from one instance is accepted by the others");
  }
  if (config.jwtSecret === undefined && config.unsubscribeSecret === undefined) {
    throw why("HERALD_UNSUBSCRIBE_SECRET", "an unsubscribe link mailed by one instance works on the others");
  }
  if (config.vapid.publicKey === undefined) {
    throw why("VAPID_PUBLIC_KEY and VAPID_PRIVATE_KEY", "a browser subscribed through one instance gets the pushes the others send");
  }
  if (config.smsWebhookUrl !== undefined && config.webhookSecret === undefined) {
    throw why("HERALD_WEBHOOK_SECRET", "every instance signs webhooks with the key your receiver checks");
  }
}

export { readOrCreateSecretFile } from "./secret-file.js";
