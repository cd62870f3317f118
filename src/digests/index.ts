/**
 * E-mail digests (docs/delivery.md, Digests): `EmailDigestService` with the guide's
 * `initializeScheduledJobs`, `sendTestDigest`, `getDigestStats`, plus
 * `runDue`/`tick` for a driven clock and `listDigests` for the history.
 */
export { EmailDigestService, LEASE_MS } from "./service.js";
export type { DigestDeps, DigestRunSummary, DigestStats, SmtpConfig } from "./service.js";
export type { DigestStatus, EmailDigest } from "./history.js";
export { MAX_ATTEMPTS, backoffMs } from "./delivery.js";
export { DEFAULT_TUNING, digestTuning } from "./tuning.js";
export type { DigestTuning } from "./tuning.js";
export {
  DIGEST_FREQUENCIES,
  dueWindow,
  isDigestFrequency,
  latestWindowEnd,
  nextWindowEnd,
  previousWindowEnd,
  windowEndsBetween,
} from "./schedule.js";
export type { DigestFrequency, DigestWindow } from "./schedule.js";
export { renderDigest, resolveActionLink } from "./render.js";
