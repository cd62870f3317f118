/**
 * What the analytics service accepts, as zod schemas, and what an event may
 * carry: text PostgreSQL can store (no NUL, no lone UTF-16 surrogate, both
 * refused by text and jsonb) and metadata bounded in size and depth. Without
 * this one bad event fails the whole flush statement it is batched into.
 */
import { z } from "zod";
import { isStorableText } from "../db/index.js";
import { validationError } from "../errors/index.js";
import { isValidTimeZone } from "../time/index.js";
import { ANALYTICS_CHANNELS, CLIENT_EVENT_TYPES, EVENT_TYPES, type EventType } from "./events.js";
import { EXPORT_FORMATS, EXPORT_KINDS } from "./export.js";
import { TOP_BY, TREND_INTERVALS } from "./metrics.js";

export const MAX_METADATA_BYTES = 8 * 1024;
/** `{"a":{"b":1}}` has depth 2. Real metadata (device, browser, channel) is flat. */
export const MAX_METADATA_DEPTH = 8;
export const MAX_METADATA_KEYS = 100;

const UNSTORABLE_TEXT = "contains a NUL character or an unpaired UTF-16 surrogate";

/** Why `s` cannot be stored as PostgreSQL text or a jsonb string, or undefined. */
export function textProblem(s: string): string | undefined {
  return isStorableText(s) ? undefined : UNSTORABLE_TEXT;
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

/**
 * `value` as `schema` parses it, else HERALD_VALIDATION for `field`: the
 * field's message is the schema's (its first issue), the problem's detail
 * `detail(message)`, by default "<field> <message>".
 */
export function parseField<T>(schema: z.ZodType<T>, value: unknown, field: string, detail = (message: string) => `${field} ${message}`): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const message = r.error.issues[0]?.message ?? "invalid";
  throw validationError(detail(message), [{ field, message }]);
}

/** Any 8-4-4-4-12 hex id (no version check). */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const uuidSchema = z.string({ error: "must be a UUID" }).regex(UUID, "must be a UUID");

/** A user id an event can carry: 1 to 255 characters of storable text. */
const eventUserIdSchema = z
  .string({ error: "required" })
  .min(1, "required")
  .max(255, "required")
  .refine(isStorableText, UNSTORABLE_TEXT);

const eventTypeSchema = z.enum(EVENT_TYPES, { error: (issue) => `unknown event type ${String(issue.input)}` });
const clientEventTypeSchema = z.enum(CLIENT_EVENT_TYPES, { error: `must be one of ${CLIENT_EVENT_TYPES.join(", ")}` });

/** Absent, null, or an object `metadataProblem` accepts (its walk is iterative: no recursion on deep input). */
const metadataSchema = z.custom<Record<string, unknown> | null | undefined>().superRefine((value, ctx) => {
  const problem = metadataProblem(value);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});

const timeZoneSchema = z.string({ error: "not an IANA time zone" }).refine(isValidTimeZone, "not an IANA time zone");

/** A check of `field` as one of `values`: "<field> must be one of a, b". */
function oneOf<const T extends readonly [string, ...string[]]>(field: string, values: T): (value: unknown) => T[number] {
  const schema = z.enum(values, { error: "invalid" });
  return (value) => parseField(schema, value, field, () => `${field} must be one of ${values.join(", ")}`);
}

/** A check of `field` as an integer from `min` to `max`. */
function intBetween(field: string, min: number, max: number): (value: unknown) => number {
  const out = "out of range";
  const schema = z.number({ error: out }).int(out).min(min, out).max(max, out);
  return (value) => parseField(schema, value, field, () => `${field} must be an integer from ${min} to ${max}`);
}

/**
 * The AnalyticsService's inputs. Each returns the value it accepts or throws
 * HERALD_VALIDATION naming the field (the `errors` of the problem body).
 */
export const check = {
  uuid: (value: unknown, field: string): string => parseField(uuidSchema, value, field),
  eventUserId: (value: unknown): string =>
    parseField(eventUserIdSchema, value, "userId", (m) => (m === "required" ? "userId must be a non-empty string" : `userId ${m}`)),
  eventType: (value: unknown): EventType => parseField(eventTypeSchema, value, "eventType", () => `eventType must be one of ${EVENT_TYPES.join(", ")}`),
  /** What a provider may track: what its client observed. */
  clientEventType: (value: unknown): EventType =>
    parseField(clientEventTypeSchema, value, "eventType", () => `A provider may track only ${CLIENT_EVENT_TYPES.join(", ")}; Herald records ${String(value)} itself`),
  metadata: (value: unknown): Record<string, unknown> | null | undefined => parseField(metadataSchema, value, "metadata"),
  /** A zone for trends; the field is the route's query parameter, `tz`. */
  timeZone: (value: unknown): string => parseField(timeZoneSchema, value, "tz", () => `Unknown time zone ${String(value)}`),
  interval: oneOf("interval", TREND_INTERVALS),
  topBy: oneOf("by", TOP_BY),
  exportFormat: oneOf("format", EXPORT_FORMATS),
  exportKind: oneOf("kind", EXPORT_KINDS),
  channel: oneOf("channel", ANALYTICS_CHANNELS),
  days: intBetween("days", 1, 3650),
  limit: intBetween("limit", 1, 100),
  minDelivered: intBetween("minDelivered", 1, 1_000_000_000),
};
