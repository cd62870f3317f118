/**
 * The digest pipeline's timing knobs, with production defaults. Each can be
 * set from the environment so a test (or an operator) can run several real
 * processes with a lease of seconds instead of minutes. Read here rather than
 * in src/config because only the digest service uses them.
 */

export interface DigestTuning {
  /** How long a lease lets one instance send a digest before another may take it over (HERALD_DIGEST_LEASE_MS). */
  leaseMs: number;
  /**
   * No SMTP transaction starts this close to the end of the lease, so one that
   * starts ends (or times out) before another instance can take the digest.
   * At most half the lease (HERALD_DIGEST_LEASE_SAFETY_MS).
   */
  leaseSafetyMs: number;
  /** Longest sleep of the scheduler loop between passes (HERALD_DIGEST_POLL_MS). */
  pollMs: number;
  /** First retry delay, doubled per attempt (HERALD_DIGEST_RETRY_BASE_MS). */
  retryBaseMs: number;
  /** Longest retry delay (HERALD_DIGEST_RETRY_CAP_MS). */
  retryCapMs: number;
  /** Leases (attempts) before a digest is given up as failed (HERALD_DIGEST_MAX_ATTEMPTS). */
  maxAttempts: number;
  /** SMTP connect, greeting and socket inactivity timeout (HERALD_SMTP_TIMEOUT_MS); undefined keeps the mailer's 30 s. */
  smtpTimeoutMs: number | undefined;
}

export const DEFAULT_TUNING: Readonly<DigestTuning> = Object.freeze({
  leaseMs: 5 * 60_000,
  leaseSafetyMs: 60_000,
  pollMs: 60_000,
  retryBaseMs: 60_000,
  retryCapMs: 3_600_000,
  maxAttempts: 5,
  smtpTimeoutMs: undefined,
});

const ENV: Record<keyof DigestTuning, string> = {
  leaseMs: "HERALD_DIGEST_LEASE_MS",
  leaseSafetyMs: "HERALD_DIGEST_LEASE_SAFETY_MS",
  pollMs: "HERALD_DIGEST_POLL_MS",
  retryBaseMs: "HERALD_DIGEST_RETRY_BASE_MS",
  retryCapMs: "HERALD_DIGEST_RETRY_CAP_MS",
  maxAttempts: "HERALD_DIGEST_MAX_ATTEMPTS",
  smtpTimeoutMs: "HERALD_SMTP_TIMEOUT_MS",
};

/** Defaults, then the environment variables that are set, then `overrides`; throws on a bad value. */
export function digestTuning(overrides: Partial<DigestTuning> = {}, env: Record<string, string | undefined> = process.env): DigestTuning {
  const t: DigestTuning = { ...DEFAULT_TUNING };
  for (const key of Object.keys(ENV) as (keyof DigestTuning)[]) {
    const raw = env[ENV[key]];
    if (raw === undefined || raw === "") continue;
    const n = Number(raw);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`Invalid environment variable ${ENV[key]}: must be a positive integer (got ${JSON.stringify(raw)})`);
    t[key] = n;
  }
  Object.assign(t, overrides);
  t.leaseSafetyMs = Math.min(t.leaseSafetyMs, Math.floor(t.leaseMs / 2));
  t.retryCapMs = Math.max(t.retryCapMs, t.retryBaseMs);
  return t;
}
