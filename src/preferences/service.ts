/**
 * Reads and writes a user's preferences. Reads go through the cache (1 h, as
 * the guide suggests; Redis when configured, so every instance shares it,
 * with a local copy each instance drops when the bus says it changed);
 * an update writes the row and deletes the cache entry in the same call.
 */
import { validationError } from "../errors/index.js";
import type { Cache } from "../cache/index.js";
import type { Database } from "../db/index.js";
import {
  type NotificationPreferences,
  PREFERENCE_COLUMNS,
  type PreferenceFields,
  type PreferencesUpdate,
  defaultPreferences,
  preferencesUpdateSchema,
} from "./types.js";

export interface PreferencesDeps {
  database: Database;
  cache: Cache;
}

export const PREFERENCES_TTL_SECONDS = 3600;
const cacheKey = (userId: string) => `prefs:${userId}`;

const FIELDS = Object.keys(PREFERENCE_COLUMNS) as (keyof PreferenceFields)[];
/** `col AS "field", ...` for every preference, so rows come back in the guide's names. */
export const PREFERENCE_SELECT = FIELDS.map((f) => `p.${PREFERENCE_COLUMNS[f]} AS "${f}"`).join(", ");

type Row = PreferenceFields & { userId: string; updatedAt: Date | string | null };

export function rowToPreferences(row: Row): NotificationPreferences {
  const prefs = defaultPreferences(row.userId);
  for (const f of FIELDS) (prefs as unknown as Record<string, unknown>)[f] = row[f];
  prefs.updatedAt = row.updatedAt === null ? null : new Date(row.updatedAt).toISOString();
  return prefs;
}

export class PreferencesService {
  constructor(private readonly deps: PreferencesDeps) {}

  /** The user's preferences, or the defaults when the user never set any. */
  async get(userId: string): Promise<NotificationPreferences> {
    const { database, cache } = this.deps;
    const cached = await cache.get<NotificationPreferences>(cacheKey(userId));
    if (cached) return cached;
    const rows = await database.query<Row>(
      `SELECT p.user_id AS "userId", ${PREFERENCE_SELECT}, p.updated_at AS "updatedAt"
         FROM notification_preferences p WHERE p.user_id = $1`,
      [userId],
    );
    const prefs = rows[0] ? rowToPreferences(rows[0]) : defaultPreferences(userId);
    await cache.set(cacheKey(userId), prefs, PREFERENCES_TTL_SECONDS);
    return prefs;
  }

  /**
   * Applies a partial update (validated: HH:mm, volume 0-100, enums, no
   * unknown fields) and returns the whole result. Fields left out keep their
   * value; a user without a row gets the defaults for them.
   */
  async update(userId: string, patch: unknown): Promise<NotificationPreferences> {
    const parsed = preferencesUpdateSchema.safeParse(patch);
    if (!parsed.success) {
      throw validationError(
        "Invalid preferences",
        parsed.error.issues.map((i) => ({ field: i.path.join(".") || (i as { keys?: string[] }).keys?.join(",") || "body", message: i.message })),
      );
    }
    const update: PreferencesUpdate = parsed.data;
    const { database, cache } = this.deps;
    const fields = FIELDS.filter((f) => update[f] !== undefined);
    const columns = fields.map((f) => PREFERENCE_COLUMNS[f]);
    const values = fields.map((f) => update[f]);
    // One upsert: insert with the given fields (defaults for the rest) or
    // update only those fields; never a read-modify-write race.
    const set = [...columns.map((c) => `${c} = EXCLUDED.${c}`), "updated_at = now()"].join(", ");
    const rows = await database.query<Row>(
      `INSERT INTO notification_preferences AS p (user_id${columns.map((c) => `, ${c}`).join("")})
       VALUES ($1${columns.map((_, i) => `, $${i + 2}`).join("")})
       ON CONFLICT (user_id) DO UPDATE SET ${set}
       RETURNING p.user_id AS "userId", ${PREFERENCE_SELECT}, p.updated_at AS "updatedAt"`,
      [userId, ...values],
    );
    await cache.delete(cacheKey(userId));
    return rowToPreferences(rows[0]!);
  }

  /**
   * Preferences of many users in one query (broadcast presentations); users
   * without a row are absent from the map and take the defaults.
   */
  async getMany(userIds: readonly string[]): Promise<Map<string, NotificationPreferences>> {
    const { database } = this.deps;
    const out = new Map<string, NotificationPreferences>();
    if (userIds.length === 0) return out;
    const rows = await database.query<Row>(
      `SELECT p.user_id AS "userId", ${PREFERENCE_SELECT}, p.updated_at AS "updatedAt"
         FROM notification_preferences p WHERE p.user_id = ANY($1::text[])`,
      [userIds],
    );
    for (const r of rows) out.set(r.userId, rowToPreferences(r));
    return out;
  }
}
