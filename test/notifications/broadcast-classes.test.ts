/**
 * A broadcast decides once per distinct setting (a class) and writes the
 * single sends of each class by joining its template rows with the
 * recipients in SQL (src/notifications/broadcast.ts). These tests prove the
 * joins give every recipient exactly what the per-recipient rules give,
 * including a user whose preferences change between the class query and the
 * write (their setting is no class: they are decided from their preferences
 * as read after the write), and that the inbox counts stay exact.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database, Session } from "../../src/db/index.js";
import { writeBroadcast } from "../../src/notifications/broadcast.js";
import { DEFAULT_PREFERENCES, decideDelivery } from "../../src/preferences/index.js";
import { type TestDatabase, openTestDatabase } from "../support/database.js";

let db: TestDatabase;
const NOW = new Date("2024-01-15T12:00:00Z");
const content = { type: "platform_update", title: "New feature", message: "m" };

beforeAll(async () => {
  db = await openTestDatabase();
  await db.query(
    `INSERT INTO users (id, email, timezone)
     SELECT 'bc-' || g, 'bc' || g || '@example.com', (ARRAY['UTC', 'Asia/Tokyo', 'America/New_York'])[1 + g % 3] FROM generate_series(1, 60) g`,
  );
  // A spread of settings: push on, e-mail off, quiet hours (on in Tokyo at 21:00), in-app off, e-mail always, digest, type off.
  await db.query(
    `INSERT INTO notification_preferences (user_id, browser_push_enabled, email_enabled, quiet_hours_enabled, quiet_hours_start, quiet_hours_end,
                                           in_app_enabled, email_immediate, frequency, platform_update_enabled, sound_volume)
     SELECT 'bc-' || g, g % 4 = 0, g % 5 <> 0, g % 6 = 0, '20:00', '07:00', g % 7 <> 0, CASE WHEN g % 8 = 0 THEN 'always' ELSE 'unseen' END,
            CASE WHEN g % 9 = 0 THEN 'daily_digest' ELSE 'immediate' END, g % 11 <> 0, 10 + g
       FROM generate_series(2, 60, 2) g`,
  );
});
afterAll(() => db?.cleanup());

interface Send {
  user: string;
  channel: string;
  status: string;
  due: string;
  payload: unknown;
}

async function sendsOf(broadcastId: string): Promise<Send[]> {
  const rows = await db.query<{ user: string; channel: string; status: string; due: Date; payload: unknown }>(
    `SELECT n.user_id AS "user", q.channel, q.status, q.next_retry_at AS due, q.payload
       FROM notification_queue q JOIN notifications n ON n.id = q.notification_id
      WHERE n.broadcast_id = $1 ORDER BY n.user_id, q.channel`,
    [broadcastId],
  );
  return rows.map((r) => ({ ...r, due: new Date(r.due).toISOString() }));
}

/** What the delivery rules give each user, one at a time: the sends and the in-app push. */
async function expected(): Promise<{ sends: Send[]; pushed: Map<string, unknown> }> {
  const users = await db.query<{ id: string; timezone: string; prefs: Record<string, unknown> | null }>(
    `SELECT u.id, u.timezone, to_jsonb(p) AS prefs FROM users u LEFT JOIN notification_preferences p ON p.user_id = u.id ORDER BY u.id`,
  );
  const sends: Send[] = [];
  const pushed = new Map<string, unknown>();
  for (const u of users) {
    const p = u.prefs;
    const prefs = p
      ? {
          ...DEFAULT_PREFERENCES,
          inAppEnabled: p.in_app_enabled as boolean,
          emailEnabled: p.email_enabled as boolean,
          browserPushEnabled: p.browser_push_enabled as boolean,
          smsEnabled: p.sms_enabled as boolean,
          platformUpdateEnabled: p.platform_update_enabled as boolean,
          quietHoursEnabled: p.quiet_hours_enabled as boolean,
          quietHoursStart: p.quiet_hours_start as string,
          quietHoursEnd: p.quiet_hours_end as string,
          frequency: p.frequency as "immediate",
          emailImmediate: p.email_immediate as "unseen",
          soundVolume: p.sound_volume as number,
        }
      : DEFAULT_PREFERENCES;
    const d = decideDelivery({ type: content.type, priority: "low" }, prefs, p ? u.timezone : "UTC", NOW);
    if (!d.store) continue;
    if (d.inApp) pushed.set(u.id, d.presentation);
    for (const channel of ["email", "push", "sms"] as const) {
      const plan = d.outOfApp[channel];
      if (plan.mode === "now" || plan.mode === "hold_until" || plan.mode === "unless_seen") {
        const due = plan.mode === "now" ? NOW : plan.mode === "hold_until" ? plan.until : plan.at;
        const payload = plan.mode === "unless_seen" ? { mode: "single", inApp: d.inApp, unlessSeen: true } : { mode: "single", inApp: d.inApp };
        sends.push({ user: u.id, channel, status: "pending", due: due.toISOString(), payload });
      }
    }
  }
  sends.sort((a, b) => (a.user === b.user ? a.channel.localeCompare(b.channel) : a.user < b.user ? -1 : 1));
  return { sends, pushed };
}

/** `database` with `between` run in the broadcast's transaction right after its first statement (the class query). */
function interposed(database: Database, between: (tx: Session) => Promise<void>): Database {
  return Object.assign(Object.create(database) as Database, {
    transaction: <T>(fn: (tx: Session) => Promise<T>) =>
      database.transaction((tx) => {
        let first = true;
        const wrapped: Session = {
          exec: (script) => tx.exec(script),
          async query<R>(text: string, params?: unknown[]) {
            const rows = await tx.query<R>(text, params);
            if (first) {
              first = false;
              await between(tx);
            }
            return rows;
          },
        };
        return fn(wrapped);
      }),
  });
}

describe("broadcast by classes of settings", () => {
  it("gives every recipient the sends and the presentation the per-recipient rules give", async () => {
    const want = await expected();
    const w = await writeBroadcast(db, content, "low", NOW, 5);
    expect(w.count).toBe(58); // bc-22 and bc-44 switched the type off.
    expect(await sendsOf(w.broadcastId)).toEqual(want.sends);
    expect(new Map(w.recipients.map((r) => [r.userId, r.presentation]))).toEqual(want.pushed);
    const rows = await db.query<{ id: string; seq: string; user: string }>(`SELECT id, seq, user_id AS "user" FROM notifications WHERE broadcast_id = $1`, [
      w.broadcastId,
    ]);
    const stored = new Map(rows.map((r) => [r.user, { id: r.id, seq: Number(r.seq) }]));
    for (const r of w.recipients) expect({ id: r.id, seq: r.seq }).toEqual(stored.get(r.userId));
  });

  it("decides a user whose preferences changed during the broadcast from their preferences read right after the write", async () => {
    // bc-1 has no saved preferences when the classes are read; in between, it saves push on and e-mail off and a new sound volume.
    const changing = interposed(db, async (tx) => {
      await tx.query(
        `INSERT INTO notification_preferences (user_id, browser_push_enabled, email_enabled, sound_volume) VALUES ('bc-1', true, false, 33)
         ON CONFLICT (user_id) DO UPDATE SET browser_push_enabled = true, email_enabled = false, sound_volume = 33`,
      );
    });
    await db.query(`DELETE FROM notification_preferences WHERE user_id = 'bc-1'`);
    const w = await writeBroadcast(changing, content, "low", NOW, 5);
    const mine = (await sendsOf(w.broadcastId)).filter((s) => s.user === "bc-1");
    expect(mine).toEqual([{ user: "bc-1", channel: "push", status: "pending", due: NOW.toISOString(), payload: { mode: "single", inApp: true } }]);
    expect(w.recipients.find((r) => r.userId === "bc-1")?.presentation).toMatchObject({ volume: 33 });
    // Everyone else is as the rules say.
    const want = await expected();
    expect(await sendsOf(w.broadcastId)).toEqual(want.sends);
    await db.query(`DELETE FROM notification_preferences WHERE user_id = 'bc-1'`);
  });

  it("keeps the inbox counts exact: one more unread for each recipient whose in-app path lists it", async () => {
    const before = new Map(
      (await db.query<{ user: string; unread: number }>(`SELECT user_id AS "user", unread_count AS unread FROM inbox_state`)).map((r) => [r.user, r.unread]),
    );
    const w = await writeBroadcast(db, content, "low", NOW, 5);
    const after = await db.query<{ user: string; unread: number; actual: number }>(
      `SELECT s.user_id AS "user", s.unread_count AS unread,
              (SELECT count(*)::int FROM notifications n WHERE n.user_id = s.user_id AND n.in_app AND NOT n.read AND NOT n.archived) AS actual
         FROM inbox_state s`,
    );
    for (const r of after) expect(r.unread).toBe(r.actual);
    const listed = await db.query<{ user: string }>(`SELECT user_id AS "user" FROM notifications WHERE broadcast_id = $1 AND in_app`, [w.broadcastId]);
    for (const { user } of listed) expect(after.find((r) => r.user === user)!.unread).toBe((before.get(user) ?? 0) + 1);
  });
});
