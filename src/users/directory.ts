/**
 * The user directory: the providers that broadcasts reach and digests are
 * mailed to, with the time zone their quiet hours and digests are computed in.
 */
import { z } from "zod";
import { validationError } from "../errors/index.js";
import { isValidTimeZone } from "../time/index.js";
import type { Cache } from "../cache/index.js";
import { type Database, isStorableText } from "../db/index.js";
import type { Clock } from "../observability/index.js";
import { recipientCacheKey } from "./deliverability.js";

export interface UserDirectoryDeps {
  database: Database;
  clock: Clock;
  /** Where time zones are cached by the notification service; dropped on change when given. */
  cache?: Cache;
}

export interface User {
  id: string;
  email: string | null;
  phone: string | null;
  name: string | null;
  timezone: string;
  locale: string;
  createdAt: string;
  updatedAt: string;
}

export interface UserInput {
  id: string;
  email?: string | null;
  phone?: string | null;
  name?: string | null;
  timezone?: string;
  locale?: string;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing C0 control characters is the point, and the regex is published as the OpenAPI `pattern` (a refine() would drop it)
export const userIdSchema = z.string().min(1).max(255).regex(/^[^\s\u0000-\u001f]+$/, "must not contain spaces or control characters");

/**
 * Any id a provider token can carry (src/auth: 1-255 characters of storable text). Routes that read,
 * act for or erase an existing user take this one: a user created by a token whose `sub` has a space
 * must still be erasable.
 */
export const existingUserIdSchema = z.string().min(1).max(255).refine(isStorableText, "must be storable text (no NUL, no lone surrogate)");

function isLocale(v: string): boolean {
  try {
    return Intl.getCanonicalLocales(v).length === 1;
  } catch {
    return false;
  }
}

/** The fields of a user, all optional: left out = keep; null = clear. */
export const userFieldsSchema = z
  .object({
    email: z.email().max(320).nullable(),
    phone: z.string().regex(/^\+[1-9]\d{6,14}$/, "must be E.164, e.g. +14155550100").nullable(),
    name: z.string().min(1).max(200).nullable(),
    timezone: z.string().max(64).refine(isValidTimeZone, "must be an IANA time zone, e.g. Europe/Paris"),
    locale: z.string().max(35).refine(isLocale, "must be a BCP 47 locale, e.g. en-GB"),
  })
  .partial()
  .strict();

export const userInputSchema = userFieldsSchema.extend({ id: userIdSchema }).strict();

export const timezoneCacheKey = (userId: string) => `tz:${userId}`;

type Row = { id: string; email: string | null; phone: string | null; name: string | null; timezone: string; locale: string; createdAt: Date | string; updatedAt: Date | string };

const toUser = (r: Row): User => ({
  id: r.id,
  email: r.email,
  phone: r.phone,
  name: r.name,
  timezone: r.timezone,
  locale: r.locale,
  createdAt: new Date(r.createdAt).toISOString(),
  updatedAt: new Date(r.updatedAt).toISOString(),
});

const COLUMNS = `id, email, phone, name, timezone, locale, created_at AS "createdAt", updated_at AS "updatedAt"`;

export const USER_PAGE_MAX = 200;

export interface UserListOptions {
  /** 1..USER_PAGE_MAX (default 50). */
  limit?: number;
  /** `next` of the previous page. */
  cursor?: string;
  /** Only users whose id, or e-mail (any case), starts with this. */
  q?: string;
}

export interface UserPage {
  users: User[];
  /** Cursor of the next page; null on the last. */
  next: string | null;
}

/** A page ends after a user id; the cursor carries it, opaque to callers (base64url). */
const encodeCursor = (id: string) => Buffer.from(id, "utf8").toString("base64url");
function decodeCursor(cursor: string): string {
  const id = Buffer.from(cursor, "base64url").toString("utf8");
  if (id.length === 0 || encodeCursor(id) !== cursor) throw validationError("Invalid cursor", [{ field: "cursor", message: "must be the `next` of a previous page" }]);
  return id;
}

export class UserDirectory {
  constructor(readonly deps: UserDirectoryDeps) {}

  /**
   * Creates or updates a user. Fields left out keep their stored value (or
   * the column default for a new user); `null` clears e-mail, phone or name.
   */
  async upsert(user: UserInput): Promise<User> {
    const parsed = userInputSchema.safeParse(user);
    if (!parsed.success) {
      throw validationError(
        "Invalid user",
        parsed.error.issues.map((i) => ({ field: i.path.join(".") || "user", message: i.message })),
      );
    }
    const u = parsed.data;
    const { database, cache } = this.deps;
    const given = (["email", "phone", "name", "timezone", "locale"] as const).filter((k) => u[k] !== undefined);
    const rows = await database.query<Row>(
      `INSERT INTO users AS u (id${given.map((k) => `, ${k}`).join("")})
       VALUES ($1${given.map((_, i) => `, $${i + 2}`).join("")})
       ON CONFLICT (id) DO UPDATE SET ${given.map((k) => `${k} = EXCLUDED.${k}, `).join("")}updated_at = now()
       RETURNING ${COLUMNS}`,
      [u.id, ...given.map((k) => u[k])],
    );
    await cache?.deleteMany([timezoneCacheKey(u.id), recipientCacheKey(u.id)]);
    return toUser(rows[0]!);
  }

  /**
   * The directory in id order, a page at a time (keyset: a page is as fast at
   * the millionth user as at the first, and users added or erased meanwhile
   * never shift a page).
   */
  async list(options: UserListOptions = {}): Promise<UserPage> {
    const limit = options.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > USER_PAGE_MAX) {
      throw validationError("Invalid page", [{ field: "limit", message: `must be an integer from 1 to ${USER_PAGE_MAX}` }]);
    }
    const after = options.cursor === undefined ? null : decodeCursor(options.cursor);
    const q = options.q ?? null;
    const rows = await this.deps.database.query<Row>(
      `SELECT ${COLUMNS} FROM users
        WHERE ($1::text IS NULL OR id > $1)
          AND ($2::text IS NULL OR starts_with(id, $2) OR starts_with(lower(email), lower($2)))
        ORDER BY id LIMIT $3`,
      [after, q, limit + 1],
    );
    const users = rows.slice(0, limit).map(toUser);
    return { users, next: rows.length > limit ? encodeCursor(users[users.length - 1]!.id) : null };
  }

  async get(id: string): Promise<User | null> {
    const { database } = this.deps;
    const rows = await database.query<Row>(`SELECT ${COLUMNS} FROM users WHERE id = $1`, [id]);
    return rows[0] ? toUser(rows[0]) : null;
  }
}
