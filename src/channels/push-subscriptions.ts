/**
 * Browser push subscriptions, several per user (one per browser/device). The
 * endpoint is unique and belongs to whoever registered it: it is re-registered
 * by its owner, or by another user only with the same keys (the same browser,
 * now signed in as someone else). Anyone else gets `null` (a 409 upstream):
 * the endpoint URL alone is not a secret worth a takeover.
 */
import type { Queryable } from "../db/index.js";

export interface PushSubscriptionInput {
  endpoint: string;
  keys: { p256dh: string; auth: string };
  userAgent?: string | null;
}

export interface StoredPushSubscription {
  id: string;
  userId: string;
  endpoint: string;
  p256dh: string;
  auth: string;
  createdAt: Date;
}

const columns = `id, user_id AS "userId", endpoint, p256dh, auth, created_at AS "createdAt"`;

/**
 * Stores the subscription; null when the endpoint belongs to another user and
 * the keys differ. A user keeps at most `maxPerUser` (issue 15.3): beyond it
 * the least recently registered are replaced, in the same statement, so a
 * browser that never unsubscribed cannot lock its user out of a new one.
 */
export async function savePushSubscription(
  db: Queryable,
  userId: string,
  sub: PushSubscriptionInput,
  maxPerUser = 10,
): Promise<StoredPushSubscription | null> {
  const rows = await db.query<StoredPushSubscription>(
    `WITH saved AS (
       INSERT INTO push_subscriptions AS s (user_id, endpoint, p256dh, auth, user_agent)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (endpoint) DO UPDATE
         SET user_id = EXCLUDED.user_id, p256dh = EXCLUDED.p256dh, auth = EXCLUDED.auth, user_agent = EXCLUDED.user_agent, created_at = now()
         WHERE s.user_id = EXCLUDED.user_id OR (s.p256dh = EXCLUDED.p256dh AND s.auth = EXCLUDED.auth)
       RETURNING ${columns}
     ), surplus AS (
       DELETE FROM push_subscriptions
        WHERE id IN (SELECT id FROM push_subscriptions WHERE user_id = $1 AND endpoint <> $2
                      ORDER BY created_at DESC, id DESC OFFSET $6::int - 1)
          AND EXISTS (SELECT 1 FROM saved)
     )
     SELECT * FROM saved`,
    [userId, sub.endpoint, sub.keys.p256dh, sub.keys.auth, sub.userAgent ?? null, maxPerUser],
  );
  return rows[0] ?? null;
}

/** Removes the user's subscription for `endpoint`; false when it was not theirs or not there. */
export async function deletePushSubscription(db: Queryable, userId: string, endpoint: string): Promise<boolean> {
  const rows = await db.query("DELETE FROM push_subscriptions WHERE user_id = $1 AND endpoint = $2 RETURNING id", [userId, endpoint]);
  return rows.length > 0;
}

export async function listPushSubscriptions(db: Queryable, userId: string): Promise<StoredPushSubscription[]> {
  return db.query<StoredPushSubscription>(`SELECT ${columns} FROM push_subscriptions WHERE user_id = $1 ORDER BY created_at`, [userId]);
}

/** The push service said the subscription is gone (404/410): forget it. */
export async function removeExpiredSubscription(db: Queryable, id: string): Promise<void> {
  await db.query("DELETE FROM push_subscriptions WHERE id = $1", [id]);
}
