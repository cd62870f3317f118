/**
 * Browser push: real Web Push (RFC 8030/8291/8292) through `web-push`, which
 * encrypts the payload (aes128gcm) and signs the VAPID JWT; the request itself
 * goes out with node:http(s) so timeouts, redirects (never followed) and the
 * destination check (safe-destination.ts, inside the connection's lookup) are
 * ours. A 404 or 410 from the push service means the browser dropped the
 * subscription: it is deleted, never retried.
 *
 * One user's subscriptions are sent to in parallel under one deadline for the
 * whole job, and an origin that keeps failing to answer is paused by a circuit
 * breaker (its jobs deferred), so one user's unanswering endpoints cannot hold
 * the worker (issue 15.3).
 */
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { isIP } from "node:net";
import webpush from "web-push";
import type { Queryable } from "../db/index.js";
import { type Clock, type Logger, systemClock } from "../observability/index.js";
import { type Channel, type ChannelError, type ChannelJob, asChannelError, deferred, httpStatusError, permanent, retryable } from "./channel.js";
import { CircuitBreaker } from "./circuit-breaker.js";
import { DestinationRefused, publicOnlyLookup, resolvePublic } from "./safe-destination.js";
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
  /** The deadline of one job: all of the user's subscriptions together (default 10 s). */
  timeoutMs?: number;
  /** Send to loopback/private addresses too (local test receivers); never in production by default. */
  allowPrivate?: boolean;
  clock?: Clock;
  /** Consecutive failures that pause an origin, and for how long (default 3, 60 s). */
  breaker?: { threshold?: number; cooldownMs?: number };
}

/** Push services accept about 4 KB of payload; the body is cut well below that. */
const BODY_MAX = 1000;

export class PushChannel implements Channel {
  readonly name = "push" as const;
  private readonly breaker: CircuitBreaker;
  constructor(private readonly options: PushChannelOptions) {
    this.breaker = new CircuitBreaker(options.clock ?? systemClock, options.breaker);
  }

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
    let pausedUntil: Date | undefined;
    const deadline = AbortSignal.timeout(this.options.timeoutMs ?? 10_000);
    const urgency = urgent ? "high" : first.priority === "low" ? "low" : "normal";
    await Promise.all(
      subs.map(async (sub) => {
        const origin = originOf(sub.endpoint);
        const paused = this.breaker.openUntil(origin);
        if (paused) {
          pausedUntil = pausedUntil && pausedUntil > paused ? pausedUntil : paused;
          return;
        }
        let status: number;
        try {
          status = await this.deliver(sub, payload, urgency, deadline);
        } catch (err) {
          const e = asChannelError(err);
          if (e.retryable) this.breaker.failure(origin);
          errors.push(e);
          return;
        }
        this.breaker.success(origin);
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
      }),
    );
    job.progress.pushed = [...done];
    const again = errors.find((e) => e.retryable);
    if (again) throw again;
    if (pausedUntil) throw deferred("circuit_open", "push service paused after repeated failures to answer", pausedUntil);
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

  /** Resolves with the push service's status; rejects when it could not be reached or may not be. */
  private async deliver(
    sub: { endpoint: string; p256dh: string; auth: string },
    payload: string,
    urgency: "high" | "normal" | "low",
    signal: AbortSignal,
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
    const url = new URL(details.endpoint);
    const allowPrivate = this.options.allowPrivate === true;
    try {
      // IP literals never reach a lookup function: check them here; names are checked in the lookup.
      if (!allowPrivate && isIP(url.hostname.replace(/^\[|\]$/g, ""))) await resolvePublic(url.hostname);
      return await new Promise<number>((resolve, reject) => {
        const req = (url.protocol === "https:" ? httpsRequest : httpRequest)(
          url,
          { method: details.method, headers: details.headers as Record<string, string | number>, signal, ...(allowPrivate ? {} : { lookup: publicOnlyLookup as never }) },
          (res) => {
            // Redirects are answers like any other: never followed.
            res.resume();
            res.on("end", () => resolve(res.statusCode ?? 0));
            res.on("error", reject);
          },
        );
        req.on("error", reject);
        req.end(details.body ? Buffer.from(details.body) : undefined);
      });
    } catch (err) {
      if (err instanceof DestinationRefused) throw permanent("destination_refused", `push endpoint refused: ${err.message}`, err);
      throw retryable("network", `push service unreachable: ${(err as Error).message}`, err);
    }
  }
}

function originOf(endpoint: string): string {
  try {
    return new URL(endpoint).origin;
  } catch {
    return endpoint;
  }
}
