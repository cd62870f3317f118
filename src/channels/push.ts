/**
 * Browser push: real Web Push (RFC 8030/8291/8292) through `web-push`, which
 * encrypts the payload (aes128gcm) and signs the VAPID JWT; the request itself
 * goes out with fetch so timeouts are ours and any endpoint URL works. A 404
 * or 410 from the push service means the browser dropped the subscription:
 * it is deleted, never retried.
 */
import webpush from "web-push";
import type { Queryable } from "../db/index.js";
import type { Logger } from "../observability/index.js";
import { type Channel, type ChannelError, type ChannelJob, asChannelError, httpStatusError, permanent, retryable } from "./channel.js";
import { listPushSubscriptions, removeExpiredSubscription } from "./push-subscriptions.js";
import { shortMessage } from "./render.js";
import type { VapidKeys } from "./vapid.js";

export interface PushChannelOptions {
  database: Queryable;
  vapid: VapidKeys;
  appUrl: string;
  logger: Logger;
  /** How long the push service may keep an undelivered message (seconds). */
  ttlSeconds?: number;
  timeoutMs?: number;
}

/** Push services accept about 4 KB of payload; the body is cut well below that. */
const BODY_MAX = 1000;

export class PushChannel implements Channel {
  readonly name = "push" as const;
  constructor(private readonly options: PushChannelOptions) {}

  async send(job: ChannelJob): Promise<void> {
    const done = new Set(Array.isArray(job.progress.pushed) ? (job.progress.pushed as string[]) : []);
    const reachedBefore = done.size > 0;
    const subs = (await listPushSubscriptions(this.options.database, job.recipient.userId)).filter((s) => !done.has(s.id));
    if (subs.length === 0) {
      if (reachedBefore) return; // Everything reached on an earlier attempt.
      throw permanent("no_recipient", `user ${job.recipient.userId} has no push subscription`);
    }
    const payload = JSON.stringify(this.payload(job));
    const first = job.notifications[0]!;
    const urgent = job.notifications.some((n) => n.priority === "critical" || n.priority === "high");
    const errors: ChannelError[] = [];
    let delivered = 0;
    let gone = 0;
    for (const sub of subs) {
      const status = await this.deliver(sub, payload, urgent ? "high" : first.priority === "low" ? "low" : "normal").catch((err: unknown) => {
        errors.push(asChannelError(err));
        return undefined;
      });
      if (status === undefined) continue;
      if (status >= 200 && status < 300) {
        delivered++;
        done.add(sub.id);
      } else if (status === 404 || status === 410) {
        gone++;
        await removeExpiredSubscription(this.options.database, sub.id);
        this.options.logger.info({ userId: job.recipient.userId, status }, "push subscription expired; removed");
      } else {
        errors.push(httpStatusError(status, "push service"));
      }
    }
    job.progress.pushed = [...done];
    const again = errors.find((e) => e.retryable);
    if (again) throw again;
    if (delivered > 0 || reachedBefore) return;
    if (errors.length > 0) throw errors[0]!;
    if (gone > 0) throw permanent("subscription_gone", `every push subscription of user ${job.recipient.userId} has expired`);
  }

  private payload(job: ChannelJob) {
    const short = shortMessage(this.options.appUrl, job.notifications);
    const first = job.notifications[0]!;
    return {
      title: short.title,
      body: short.body.length > BODY_MAX ? `${short.body.slice(0, BODY_MAX - 3)}...` : short.body,
      url: short.url,
      icon: job.notifications.length === 1 ? first.icon : null,
      // The tag lets the browser replace rather than stack a re-delivered message.
      tag: job.notifications.length === 1 ? first.id : `bundle-${job.queueId}`,
      notificationId: first.id,
      notificationIds: job.notifications.map((n) => n.id),
      type: first.type,
      priority: first.priority,
      count: job.notifications.length,
    };
  }

  /** Resolves with the push service's status; rejects only when it could not be reached. */
  private async deliver(
    sub: { endpoint: string; p256dh: string; auth: string },
    payload: string,
    urgency: "high" | "normal" | "low",
  ): Promise<number> {
    let details: ReturnType<typeof webpush.generateRequestDetails>;
    try {
      details = webpush.generateRequestDetails({ endpoint: sub.endpoint, keys: { p256dh: sub.p256dh, auth: sub.auth } }, payload, {
        vapidDetails: this.options.vapid,
        TTL: this.options.ttlSeconds ?? 24 * 3600,
        urgency,
        contentEncoding: "aes128gcm",
      });
    } catch (err) {
      // Malformed keys or endpoint: no retry will fix that subscription.
      throw permanent("bad_subscription", `push subscription unusable: ${(err as Error).message}`, err);
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(details.headers)) {
      if (k.toLowerCase() !== "content-length") headers[k] = String(v);
    }
    try {
      const res = await fetch(details.endpoint, {
        method: details.method,
        headers,
        body: details.body ? new Uint8Array(details.body) : null,
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
      });
      await res.arrayBuffer().catch(() => undefined);
      return res.status;
    } catch (err) {
      throw retryable("network", `push service unreachable: ${(err as Error).message}`, err);
    }
  }
}
