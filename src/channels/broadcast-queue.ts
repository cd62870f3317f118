/**
 * The out-of-app sends of a broadcast (the delivery rules apply to each recipient,
 * issue 16.3), written set-based in the broadcast's transaction: the same
 * rows `enqueueOutOfApp` (router.ts) writes for one notification, but one
 * INSERT ... SELECT FROM unnest for all single sends and three statements for
 * all hourly members, whatever the number of recipients.
 */
import type { Queryable } from "../db/index.js";
import { QUEUED_CHANNELS } from "./channel.js";
import { INSERT_QUEUE_ROWS, ON_QUEUE_CONFLICT } from "./queue-sql.js";
import { type EnqueueTarget, type OutOfAppDecision, type QueuePayload, bundleKey, enqueueOutOfApp, singleRow } from "./router.js";

export interface BroadcastSend extends EnqueueTarget {
  decision: OutOfAppDecision;
}

interface Member extends EnqueueTarget {
  channel: string;
  at: Date;
  inApp: boolean;
}

const INSERT_ROWS = `
${INSERT_QUEUE_ROWS}
SELECT s.notification_id, s.user_id, s.channel, s.status, s.due, $7, s.payload::jsonb, $8, $8
  FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[]) AS s(notification_id, user_id, channel, status, due, payload)
${ON_QUEUE_CONFLICT}`;

/** Writes every recipient's sends; returns how many queue rows it asked for (bundle rows not counted). */
export async function enqueueBroadcast(tx: Queryable, sends: BroadcastSend[], options: { now: Date; maxAttempts: number }): Promise<number> {
  const rows = new Rows();
  const members: Member[] = [];
  // A few payload variants for thousands of rows: each serialized once.
  const payloads = new Map<string, string>();
  const payloadText = (p: QueuePayload) => {
    const key = `${p.mode === "single" && p.inApp}|${p.mode === "single" && p.unlessSeen}`;
    const text = payloads.get(key) ?? json(p);
    payloads.set(key, text);
    return text;
  };
  for (const s of sends) {
    for (const channel of QUEUED_CHANNELS) {
      const plan = s.decision.outOfApp[channel];
      if (plan?.mode === "now" || plan?.mode === "hold_until" || plan?.mode === "unless_seen") {
        const { dueAt, payload } = singleRow(plan, s.decision.inApp, options.now);
        rows.add(s.id, s.userId, channel, "pending", dueAt, payloadText(payload));
      } else if (plan?.mode === "hourly") {
        members.push({ id: s.id, userId: s.userId, channel, at: plan.at, inApp: s.decision.inApp });
      }
    }
  }
  const count = rows.size + members.length;
  await joinBundles(tx, members, rows, options);
  if (rows.size > 0) await tx.query(INSERT_ROWS, [...rows.columns(), options.maxAttempts, options.now]);
  return count;
}

/**
 * Hourly members: opens every (user, channel, hour) bundle at once and locks
 * them, like router.ts `openBundle` does one at a time, then adds each member
 * to its bundle's rows. A bundle a worker already claimed is not joined: that
 * member takes `enqueueOutOfApp`, which moves it to the next hour (rare).
 */
async function joinBundles(tx: Queryable, members: Member[], rows: Rows, options: { now: Date; maxAttempts: number }): Promise<void> {
  if (members.length === 0) return;
  const bundles = new Map<string, { key: string; member: Member }>();
  for (const m of members) {
    const key = bundleKey(m.userId, m.channel, m.at);
    if (!bundles.has(`${key}/${m.channel}`)) bundles.set(`${key}/${m.channel}`, { key, member: m });
  }
  const open = new Rows();
  for (const { key, member } of bundles.values()) {
    open.add(key, member.userId, member.channel, "pending", member.at, json({ mode: "bundle", at: member.at.toISOString() }));
  }
  await tx.query(INSERT_ROWS, [...open.columns(), options.maxAttempts, options.now]);
  const [keys, , channels] = open.columns();
  const locked = await tx.query<{ id: string; key: string; channel: string; status: string }>(
    `SELECT q.id, q.notification_id AS key, q.channel, q.status FROM notification_queue q
       JOIN unnest($1::uuid[], $2::text[]) AS b(key, channel) ON q.notification_id = b.key AND q.channel = b.channel
      ORDER BY q.id FOR UPDATE OF q`,
    [keys, channels],
  );
  const bundleIds = new Map(locked.filter((b) => b.status === "pending").map((b) => [`${b.key}/${b.channel}`, b.id]));
  for (const m of members) {
    const bundleId = bundleIds.get(`${bundleKey(m.userId, m.channel, m.at)}/${m.channel}`);
    if (bundleId) rows.add(m.id, m.userId, m.channel, "held", m.at, json({ mode: "member", inApp: m.inApp, bundleId }));
    else await enqueueOutOfApp(tx, m, { inApp: m.inApp, outOfApp: { [m.channel]: { mode: "hourly", at: m.at } } }, options);
  }
}

/** Queue rows as the parallel arrays INSERT_ROWS takes. */
class Rows {
  private readonly cols: [string[], string[], string[], string[], Date[], string[]] = [[], [], [], [], [], []];
  get size(): number {
    return this.cols[0].length;
  }
  add(notificationId: string, userId: string, channel: string, status: string, due: Date, payload: string): void {
    const [a, b, c, d, e, f] = this.cols;
    a.push(notificationId);
    b.push(userId);
    c.push(channel);
    d.push(status);
    e.push(due);
    f.push(payload);
  }
  columns(): [string[], string[], string[], string[], Date[], string[]] {
    return this.cols;
  }
}

const json = (p: QueuePayload) => JSON.stringify(p);
