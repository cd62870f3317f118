/** The queued sends' retry policy (the formula is src/backoff's). */
import type { BackoffPolicy } from "../backoff/index.js";

export type { BackoffPolicy } from "../backoff/index.js";
export { backoffDelay } from "../backoff/index.js";

/** 30 s, 1 min, 2, 4... capped at 1 h, with equal jitter. */
export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 30_000, maxMs: 3600_000 };
