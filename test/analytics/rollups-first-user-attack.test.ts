/**
 * Attack on ROLL_UP's firsts (commit ca57136): when every event of a
 * notification is folded in by one pass, the rollup tables a pass writes
 * equal the rebuild's, row for row (user, time, type, group, counts), for
 * inputs that tie: implied events at the time of recorded ones, several users
 * at one instant, the digest channel, no channel, `failed`, notifications
 * known, deleted (their copy) or unknown, several transactions per pass, and
 * passes cut at a small batchSize (whole transactions).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { RollupWorker, rebuildRollups } from "../../src/analytics/index.js";
import { INSERT_EVENTS } from "../../src/analytics/sql.js";
import { silentLogger } from "../../src/observability/index.js";
import { type TestDatabase, openTestDatabase, usingPostgres } from "../support/database.js";
import { prng } from "../support/prng.js";
import { uuid } from "./fixtures.js";

const AT = Date.parse("2024-05-01T10:14:58.000Z"); // two seconds before a bucket boundary
const TYPES = ["sent", "delivered", "opened", "clicked", "archived", "deleted", "failed"] as const;
const CHANNELS = [null, "in_app", "email", "push", "sms", "digest"] as const;
const USERS = ["zed", "amy", "bob", "ann", "yan"];

interface Row {
  n: string;
  user: string;
  type: string;
  at: Date;
  channel: string | null;
}

/** INSERT_EVENTS's parameters for `rows`, in their order (ids follow it). */
const params = (rows: Row[]) => [
  rows.map((r) => r.n),
  rows.map((r) => r.user),
  rows.map((r) => r.type),
  rows.map((r) => r.at.toISOString()),
  rows.map(() => null),
  rows.map((r) => r.channel),
];

describe("a pass that sees all of a notification's events writes the rebuild's rows", () => {
  let db: TestDatabase;

  /** Every row of the five rollup tables, as text, in a fixed order. */
  const tables = async () => {
    const out: Record<string, string[]> = {};
    for (const t of ["analytics_firsts", "analytics_channel_firsts", "analytics_rollup", "analytics_channel_rollup", "analytics_group_stats"]) {
      out[t] = (await db.query<{ r: string }>(`SELECT to_jsonb(t)::text AS r FROM ${t} t ORDER BY 1`)).map((x) => x.r);
    }
    return out;
  };

  /** Rolls up with `worker`, then checks that a rebuild writes the same rows. */
  const passEqualsRebuild = async (worker: RollupWorker) => {
    await worker.catchUp();
    const live = await tables();
    expect(live.analytics_firsts!.length).toBeGreaterThan(0);
    await rebuildRollups(db);
    expect(await tables()).toEqual(live);
  };

  beforeAll(async () => {
    db = await openTestDatabase();
  });
  afterAll(async () => db.cleanup());
  beforeEach(async () => {
    await db.query(
      "TRUNCATE analytics_events, analytics_firsts, analytics_rollup, analytics_group_stats, analytics_channel_firsts, analytics_channel_rollup, analytics_deleted_notifications, notifications CASCADE",
    );
    await db.query("UPDATE analytics_rollup_state SET snapshot = pg_current_snapshot()");
  });

  /**
   * Random events over few instants (ties everywhere): `notifications`
   * notifications, one in three known, one in three deleted (copy only,
   * some of a broadcast), the rest unknown; `groupBy`: one transaction per
   * notification, or transactions of 1 to 9 rows in random order.
   */
  async function scenario(seed: number, notifications: number, groupBy: "notification" | "random") {
    const rand = prng(seed);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
    const rows: Row[] = [];
    for (let i = 1; i <= notifications; i++) {
      const n = uuid(i);
      const kind = i % 3;
      const broadcast = rand() < 0.5 ? uuid(10_000 + (i % 4)) : null;
      // A broadcast's recipients share its type and title, as real ones do.
      const type = broadcast ? ["alert", "promo"][i % 2]! : pick(["alert", "promo"]);
      const title = broadcast ? `b${broadcast.slice(-1)}` : `t${i}`;
      if (kind === 0) {
        await db.query(`INSERT INTO notifications (id, user_id, type, priority, title, message, broadcast_id) VALUES ($1, 'owner', $2, 'normal', $3, 'body', $4)`, [
          n,
          type,
          title,
          broadcast,
        ]);
      } else if (kind === 1) {
        await db.query("INSERT INTO analytics_deleted_notifications (notification_id, notification_type, group_id, title) VALUES ($1, $2, $3, $4)", [
          n,
          type,
          broadcast ?? n,
          title,
        ]);
      }
      const count = 1 + Math.floor(rand() * 12);
      for (let k = 0; k < count; k++) {
        const type = pick(TYPES);
        const channel = type === "sent" || type === "delivered" || type === "failed" ? pick(CHANNELS) : rand() < 0.1 ? pick(CHANNELS) : null;
        rows.push({ n, user: pick(USERS), type, at: new Date(AT + Math.floor(rand() * 4) * 1000), channel });
      }
    }
    // Shuffle, so ids do not follow notifications or times.
    for (let i = rows.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [rows[i], rows[j]] = [rows[j]!, rows[i]!];
    }
    if (groupBy === "notification") {
      // One transaction per notification: a pass cut at whole transactions still sees all of one.
      const by = new Map<string, Row[]>();
      for (const r of rows) by.set(r.n, [...(by.get(r.n) ?? []), r]);
      for (const batch of by.values()) await db.query(INSERT_EVENTS, params(batch));
    } else {
      for (let i = 0; i < rows.length; ) {
        const size = 1 + Math.floor(rand() * 9);
        await db.query(INSERT_EVENTS, params(rows.slice(i, i + size)));
        i += size;
      }
    }
    return rows.length;
  }

  it("random tied events over many transactions, one pass: the same rows as a rebuild (12 seeds)", async () => {
    for (let seed = 1; seed <= 12; seed++) {
      await db.query(
        "TRUNCATE analytics_events, analytics_firsts, analytics_rollup, analytics_group_stats, analytics_channel_firsts, analytics_channel_rollup, analytics_deleted_notifications, notifications CASCADE",
      );
      await db.query("UPDATE analytics_rollup_state SET snapshot = pg_current_snapshot()");
      await scenario(seed, 30, "random");
      await passEqualsRebuild(new RollupWorker({ database: db, logger: silentLogger, batchSize: 1_000_000 }));
    }
  });

  it("passes cut at a few rows, each notification in one transaction: the same rows as a rebuild", async () => {
    await scenario(99, 40, "notification");
    const worker = new RollupWorker({ database: db, logger: silentLogger, batchSize: 5 });
    let passes = 0;
    worker.onRolledUp(() => {
      passes++;
    });
    await passEqualsRebuild(worker);
    expect(passes).toBeGreaterThan(5);
  });

  it("implied and recorded rows at one instant: the lowest id names the user, whichever type it is", async () => {
    const t = new Date(AT);
    // ids in this order: the click (implies delivered and sent) is stored before the recorded delivery and send.
    await db.query(
      INSERT_EVENTS,
      params([
        { n: uuid(1), user: "zed", type: "clicked", at: t, channel: null },
        { n: uuid(1), user: "amy", type: "delivered", at: t, channel: "email" },
        { n: uuid(1), user: "bob", type: "sent", at: t, channel: "email" },
        { n: uuid(2), user: "zed", type: "sent", at: t, channel: "push" },
        { n: uuid(2), user: "amy", type: "delivered", at: t, channel: "push" },
        { n: uuid(2), user: "bob", type: "delivered", at: t, channel: "digest" },
      ]),
    );
    await passEqualsRebuild(new RollupWorker({ database: db, logger: silentLogger }));
    const firsts = await db.query<{ r: string }>(
      `SELECT notification_id || ' ' || event_type || ' ' || user_id AS r FROM analytics_firsts
       UNION ALL SELECT notification_id || ' ' || channel || ':' || outcome || ' ' || user_id FROM analytics_channel_firsts ORDER BY 1`,
    );
    expect(firsts.map((x) => x.r)).toEqual(
      [
        `${uuid(1)} clicked zed`,
        `${uuid(1)} delivered zed`,
        `${uuid(1)} sent zed`,
        `${uuid(1)} email:delivered amy`,
        `${uuid(1)} email:sent amy`,
        `${uuid(2)} sent zed`,
        `${uuid(2)} delivered amy`,
        `${uuid(2)} push:sent zed`,
        `${uuid(2)} push:delivered amy`,
        `${uuid(2)} digest:sent bob`,
        `${uuid(2)} digest:delivered bob`,
      ].sort(),
    );
  });

  it.skipIf(!usingPostgres)("ids not in commit order, tied times, one pass: the same rows as a rebuild (PostgreSQL, two transactions interleaved)", async () => {
    const t = new Date(AT);
    let commitA!: () => void;
    const gate = new Promise<void>((resolve) => (commitA = resolve));
    let insertedA!: () => void;
    const aInserted = new Promise<void>((resolve) => (insertedA = resolve));
    // A takes the lower ids and commits last.
    const a = db.transaction(async (tx) => {
      await tx.query(
        INSERT_EVENTS,
        params([
          { n: uuid(1), user: "zed", type: "delivered", at: t, channel: "sms" },
          { n: uuid(2), user: "zed", type: "opened", at: t, channel: null },
        ]),
      );
      insertedA();
      await gate;
    });
    await aInserted;
    await db.query(
      INSERT_EVENTS,
      params([
        { n: uuid(1), user: "amy", type: "opened", at: t, channel: null },
        { n: uuid(1), user: "amy", type: "sent", at: t, channel: "sms" },
        { n: uuid(2), user: "amy", type: "delivered", at: t, channel: "in_app" },
      ]),
    );
    commitA();
    await a;
    await passEqualsRebuild(new RollupWorker({ database: db, logger: silentLogger }));
    const users = await db.query<{ r: string }>("SELECT DISTINCT user_id AS r FROM analytics_firsts WHERE event_type IN ('sent', 'delivered') ORDER BY 1");
    expect(users.map((x) => x.r)).toEqual(["zed"]);
  });
});
