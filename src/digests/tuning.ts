/**
 * The digest pipeline's timing knobs, with production defaults. Each can be
 * set from the environment (HERALD_DIGEST_*, HERALD_SMTP_TIMEOUT_MS, parsed
 * by src/config) so a test or an operator can run several real processes
 * with a lease of seconds instead of minutes.
 */

export interface DigestTuning {
  /** How long a lease lets one instance send a digest before another may take it over. */
  leaseMs: number;
  /**
   * No SMTP transaction starts this close to the end of the lease, so one that
   * starts ends (or times out) before another instance can take the digest.
   * At most half the lease.
   */
  leaseSafetyMs: number;
  /** Longest sleep of the scheduler loop between passes. */
  pollMs: number;
  /** First retry delay, doubled per attempt. */
  retryBaseMs: number;
  /** Longest retry delay. */
  retryCapMs: number;
  /** Leases (attempts) before a digest is given up as failed. */
  maxAttempts: number;
  /** SMTP connect, greeting and socket inactivity timeout; undefined keeps the mailer's 30 s. */
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

/** Defaults, then `overrides` (from config or a test), kept consistent: the safety margin at most half the lease, the cap at least the base. */
export function digestTuning(overrides: Partial<DigestTuning> = {}): DigestTuning {
  const t: DigestTuning = { ...DEFAULT_TUNING, ...overrides };
  t.leaseSafetyMs = Math.min(t.leaseSafetyMs, Math.floor(t.leaseMs / 2));
  t.retryCapMs = Math.max(t.retryCapMs, t.retryBaseMs);
  return t;
}
