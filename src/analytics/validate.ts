/**
 * What an analytics event may carry, checked before it is accepted: text
 * PostgreSQL can store (no NUL, no lone UTF-16 surrogate, both refused by
 * text and jsonb) and metadata bounded in size and depth. Without this one
 * bad event fails the whole flush statement it is batched into.
 */

export const MAX_METADATA_BYTES = 8 * 1024;
/** `{"a":{"b":1}}` has depth 2. Real metadata (device, browser, channel) is flat. */
export const MAX_METADATA_DEPTH = 8;
export const MAX_METADATA_KEYS = 100;

// A NUL, a high surrogate not followed by a low one, or a low one not preceded by a high one.
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why `s` cannot be stored as PostgreSQL text or a jsonb string, or undefined. */
export function textProblem(s: string): string | undefined {
  return UNSTORABLE.test(s) ? "contains a NUL character or an unpaired UTF-16 surrogate" : undefined;
}

/**
 * Why `metadata` cannot be stored, or undefined. Iterative (no recursion), so
 * a value nested 100,000 deep is refused rather than overflowing the stack.
 */
export function metadataProblem(metadata: unknown): string | undefined {
  if (metadata == null) return undefined;
  if (typeof metadata !== "object" || Array.isArray(metadata)) return "must be an object";
  const stack: { value: unknown; depth: number }[] = [{ value: metadata, depth: 1 }];
  let keys = 0;
  while (stack.length > 0) {
    const { value, depth } = stack.pop()!;
    if (typeof value === "string") {
      const problem = textProblem(value);
      if (problem) return problem;
      continue;
    }
    if (typeof value === "number") {
      if (!Number.isFinite(value)) return "holds a number that is not finite";
      continue;
    }
    // undefined: JSON.stringify leaves the key out.
    if (value == null || typeof value === "boolean") continue;
    if (typeof value !== "object") return `holds a ${typeof value}, which is not JSON`;
    if (depth > MAX_METADATA_DEPTH) return `is nested deeper than ${MAX_METADATA_DEPTH} levels`;
    // Array.from, not map: a sparse array's holes (JSON null) must be visited, not left as holes.
    const entries = Array.isArray(value) ? Array.from(value as unknown[], (v) => ["", v] as const) : Object.entries(value as Record<string, unknown>);
    keys += entries.length;
    if (keys > MAX_METADATA_KEYS * 10) return `has more than ${MAX_METADATA_KEYS * 10} values`;
    for (const [k, v] of entries) {
      const problem = textProblem(k);
      if (problem) return `key ${problem}`;
      stack.push({ value: v, depth: depth + 1 });
    }
  }
  if (Object.keys(metadata).length > MAX_METADATA_KEYS) return `has more than ${MAX_METADATA_KEYS} keys`;
  // Bounded depth and count above, so this cannot overflow.
  if (Buffer.byteLength(JSON.stringify(metadata)) > MAX_METADATA_BYTES) return `is larger than ${MAX_METADATA_BYTES} bytes`;
  return undefined;
}
