/**
 * The routing of the delivery rules (docs/delivery.md) into queue rows. The delivery rules
 * (src/preferences/delivery-rules.ts) decide per channel; this writes what
 * they decided, in the caller's transaction, so a notification and its sends
 * commit or vanish together:
 *
 * - `now`        one `pending` row due now;
 * - `hold_until` one `pending` row due when quiet hours end;
 * - `unless_seen` one `pending` row due after the unseen delay, marked
 *                `unlessSeen`: the worker cancels it if by then a device
 *                acknowledged the notification or the user read it;
 * - `hourly`     one `held` member row plus, per (user, channel, hour), one
 *                bundle row due at the top of the hour that sends every member
 *                as a single message;
 * - `digest`, `off`  nothing (the digest reads the inbox itself).
 *
 * The unique index on (notification_id, channel) makes every send
 * idempotent: enqueueing the same notification twice adds nothing.
 */
import { createHash } from "node:crypto";
import type { Queryable } from "../db/index.js";
import type { ChannelPlan, OutOfAppChannel } from "../preferences/index.js";
import { QUEUED_CHANNELS } from "./channel.js";
import { insertQueueRow } from "./queue-sql.js";

export interface EnqueueTarget {
  id: string;
  userId: string;
}

/** The part of a `DeliveryDecision` the queue needs. */
export interface OutOfAppDecision {
  /** Whether the in-app path delivers this notification (then it is never marked failed by the queue). */
  inApp: boolean;
  outOfApp: Partial<Record<OutOfAppChannel, ChannelPlan>>;
}

export interface EnqueueOptions {
  /** The caller's clock; rows due "now" are due at this instant. */
  now?: Date;
  maxAttempts?: number;
}

export interface EnqueuedRow {
  channel: OutOfAppChannel;
  mode: "single" | "member";
  dueAt: Date;
}

/** Queue row payload; `mode` says how the worker treats the row. */
export type QueuePayload =
  | { mode: "single"; inApp: boolean; unlessSeen?: true; pushed?: string[] }
  | { mode: "member"; inApp: boolean; bundleId: string }
  | { mode: "bundle"; at: string; pushed?: string[] };

const HOUR = 3600_000;

export async function enqueueOutOfApp(
  tx: Queryable,
  notification: EnqueueTarget,
  decision: OutOfAppDecision,
  options: EnqueueOptions = {},
): Promise<EnqueuedRow[]> {
  const now = options.now ?? new Date();
  const maxAttempts = options.maxAttempts ?? 5;
  const out: EnqueuedRow[] = [];
  for (const channel of QUEUED_CHANNELS) {
    const plan = decision.outOfApp[channel];
    if (!plan) continue;
    if (plan.mode === "now" || plan.mode === "hold_until" || plan.mode === "unless_seen") {
      const { dueAt, payload } = singleRow(plan, decision.inApp, now);
      await insertQueueRow(tx, { notificationId: notification.id, userId: notification.userId, channel, status: "pending", dueAt, maxAttempts, payload, now });
      out.push({ channel, mode: "single", dueAt });
    } else if (plan.mode === "hourly") {
      const { bundleId, at } = await openBundle(tx, notification.userId, channel, plan.at, now, maxAttempts);
      const payload: QueuePayload = { mode: "member", inApp: decision.inApp, bundleId };
      await insertQueueRow(tx, { notificationId: notification.id, userId: notification.userId, channel, status: "held", dueAt: at, maxAttempts, payload, now });
      out.push({ channel, mode: "member", dueAt: at });
    }
  }
  return out;
}

/**
 * The queue rows of a decision whose sends are all single (`now` or
 * `hold_until`), as parallel arrays for writing in the statement that
 * creates the notification (one round trip, atomic); undefined when a plan
 * needs an hourly bundle, which takes `enqueueOutOfApp` in a transaction.
 */
export function singleSendRows(
  decision: OutOfAppDecision,
  now: Date,
): { channels: OutOfAppChannel[]; dueAt: Date[]; payloads: string[] } | undefined {
  const rows = { channels: [] as OutOfAppChannel[], dueAt: [] as Date[], payloads: [] as string[] };
  for (const channel of QUEUED_CHANNELS) {
    const plan = decision.outOfApp[channel];
    if (!plan || plan.mode === "digest" || plan.mode === "off") continue;
    if (plan.mode === "hourly") return undefined;
    const { dueAt, payload } = singleRow(plan, decision.inApp, now);
    rows.channels.push(channel);
    rows.dueAt.push(dueAt);
    rows.payloads.push(JSON.stringify(payload));
  }
  return rows;
}

/** When a single send is due and what its row carries. */
export function singleRow(plan: Extract<ChannelPlan, { mode: "now" | "hold_until" | "unless_seen" }>, inApp: boolean, now: Date): { dueAt: Date; payload: QueuePayload } {
  if (plan.mode === "unless_seen") return { dueAt: plan.at, payload: { mode: "single", inApp, unlessSeen: true } };
  return { dueAt: plan.mode === "now" ? now : plan.until, payload: { mode: "single", inApp } };
}

/**
 * Finds or creates the bundle row for (user, channel, hour) and locks it
 * until the caller commits: a worker cannot claim it (SKIP LOCKED) while a
 * member is being added, and a bundle a worker already claimed is not joined
 * (the member goes to the next hour), so no member is ever left behind.
 */
async function openBundle(
  tx: Queryable,
  userId: string,
  channel: OutOfAppChannel,
  firstAt: Date,
  now: Date,
  maxAttempts: number,
): Promise<{ bundleId: string; at: Date }> {
  let at = firstAt;
  for (let i = 0; i < 48; i++) {
    const key = bundleKey(userId, channel, at);
    const payload: QueuePayload = { mode: "bundle", at: at.toISOString() };
    await insertQueueRow(tx, { notificationId: key, userId, channel, status: "pending", dueAt: at, maxAttempts, payload, now });
    const [row] = await tx.query<{ id: string; status: string }>(
      "SELECT id, status FROM notification_queue WHERE notification_id = $1 AND channel = $2 FOR UPDATE",
      [key, channel],
    );
    if (row && row.status === "pending") return { bundleId: row.id, at };
    at = new Date(at.getTime() + HOUR);
  }
  throw new Error(`no open hourly bundle for ${userId}/${channel} within 48 hours`);
}

/**
 * The bundle row's notification_id: a UUID derived from (user, channel, hour)
 * so the existing unique (notification_id, channel) index makes "one bundle
 * per user, channel and hour" a database guarantee.
 */
export function bundleKey(userId: string, channel: string, at: Date): string {
  const h = createHash("sha256").update(`herald-bundle\0${userId}\0${channel}\0${at.toISOString()}`).digest("hex");
  // Version 8 (custom) UUID with the RFC 4122 variant bits.
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
