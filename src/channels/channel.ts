/**
 * The out-of-app channel contract. A channel sends one job (one notification,
 * or an hourly bundle of several) to one user and either resolves (delivered
 * to the provider: SMTP accepted, push service 201, webhook 2xx) or throws a
 * `ChannelError` saying whether trying again can help. The queue worker owns
 * retries; channels never retry by themselves.
 */
import type { NotificationRow } from "../db/index.js";
import { OUT_OF_APP_CHANNELS, type OutOfAppChannel } from "../preferences/index.js";

/** The four channels of the guide's preferences; only the out-of-app ones (the delivery rules' list) go through the queue. */
export const CHANNEL_NAMES = ["in_app", ...OUT_OF_APP_CHANNELS] as const;
export type ChannelName = (typeof CHANNEL_NAMES)[number];
export type OutOfAppChannelName = OutOfAppChannel;
export const QUEUED_CHANNELS: readonly OutOfAppChannelName[] = OUT_OF_APP_CHANNELS;

/**
 * The in-app channel is the WebSocket path of the notification service
 * (stored row + publish + sync on reconnect); it never enters the queue. This
 * marker exists so code that lists channels names all four in one place.
 */
export const IN_APP_CHANNEL = Object.freeze({ name: "in_app" as const, queued: false });

/** What a channel needs to know about a notification (a subset of the row). */
export type ChannelNotification = Pick<
  NotificationRow,
  "id" | "type" | "priority" | "title" | "message" | "description" | "icon" | "actionUrl" | "actionLabel" | "createdAt"
>;

export interface ChannelRecipient {
  userId: string;
  email: string | null;
  phone: string | null;
  name: string | null;
  locale: string;
}

export interface ChannelJob {
  /** The queue row being worked on (a bundle's own row for hourly bundles). */
  queueId: string;
  attempt: number;
  recipient: ChannelRecipient;
  /** One notification, or several (oldest first) for an hourly bundle. */
  notifications: ChannelNotification[];
  /**
   * Per-job progress the channel may update before throwing, persisted with
   * the row so a retry skips what already went out (push to several devices).
   */
  progress: Record<string, unknown>;
  /**
   * False once a send not yet started could still be under way when the
   * claim's lease ends, when another claim may send the row too. A channel
   * that can wait before it starts (e-mail, for a pooled SMTP connection)
   * asks it then, and throws `fenced()` instead of starting.
   */
  mayStart: () => boolean;
}

export interface Channel {
  readonly name: OutOfAppChannelName;
  send(job: ChannelJob): Promise<void>;
}

export type ChannelErrorKind = "retryable" | "permanent";

/** The code of a send its job's fence (ChannelJob.mayStart) stopped before it started. */
export const FENCED = "fenced";

/** Thrown by channels; `kind` decides whether the worker tries again. */
export class ChannelError extends Error {
  override name = "ChannelError";
  constructor(
    readonly kind: ChannelErrorKind,
    /** Short stable reason, e.g. "no_recipient", "http_503", "smtp_550". */
    readonly code: string,
    message: string,
    options?: { cause?: unknown; deferUntil?: Date },
  ) {
    super(message, { cause: options?.cause });
    this.deferUntil = options?.deferUntil;
  }
  /**
   * Nothing was attempted: the destination is paused (circuit open) until
   * then. The worker reschedules the row to that time without counting an attempt.
   */
  readonly deferUntil: Date | undefined;
  get retryable(): boolean {
    return this.kind === "retryable";
  }
}

export const retryable = (code: string, message: string, cause?: unknown) =>
  new ChannelError("retryable", code, message, { cause });
export const permanent = (code: string, message: string, cause?: unknown) =>
  new ChannelError("permanent", code, message, { cause });
export const deferred = (code: string, message: string, until: Date) => new ChannelError("retryable", code, message, { deferUntil: until });
/** Not started: the job's fence said no (its lease nearly over). Nothing was tried; the worker hands the row on at once, the attempt not counted. */
export const fenced = (message: string, cause?: unknown) => new ChannelError("retryable", FENCED, message, { cause });

/**
 * Anything that is not a ChannelError (a bug, a DNS hiccup) is treated as
 * retryable: the attempt limit still bounds it, and nothing is lost.
 */
export function asChannelError(err: unknown): ChannelError {
  if (err instanceof ChannelError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return retryable("error", message, err);
}

/** Classifies an HTTP status from a provider: 5xx and 429 may pass, other 4xx never will. */
export function httpStatusError(status: number, what: string, body = ""): ChannelError {
  const detail = `${what} answered HTTP ${status}${body ? `: ${body.slice(0, 200)}` : ""}`;
  return status >= 500 || status === 429 || status === 408 ? retryable(`http_${status}`, detail) : permanent(`http_${status}`, detail);
}
