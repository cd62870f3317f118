/** The six analytics event types of the guide, the channels events come from, and the sink other domains write to. */
export const EVENT_TYPES = ["sent", "delivered", "opened", "clicked", "archived", "deleted"] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** What a client observes and a provider may track; Herald records the others itself. */
export const CLIENT_EVENT_TYPES = ["opened", "clicked"] as const satisfies readonly EventType[];

/**
 * Where a send went: the WebSocket (`in_app`), the three out-of-app channels,
 * and the digest e-mail, which is its own thing: counted per digest message,
 * never per notification it summarises (docs/delivery.md, Analytics).
 */
export const ANALYTICS_CHANNELS = ["in_app", "email", "push", "sms", "digest"] as const;
export type AnalyticsChannel = (typeof ANALYTICS_CHANNELS)[number];

/** What is counted per channel. `failed` is an outcome of a channel only: a send given up for good. */
export const CHANNEL_OUTCOMES = ["sent", "delivered", "failed"] as const;
export type ChannelOutcome = (typeof CHANNEL_OUTCOMES)[number];

/** What Herald records: the six event types, plus a channel's final failure. */
export type RecordedEventType = EventType | "failed";

export function isEventType(value: unknown): value is EventType {
  return typeof value === "string" && (EVENT_TYPES as readonly string[]).includes(value);
}

export function isAnalyticsChannel(value: unknown): value is AnalyticsChannel {
  return typeof value === "string" && (ANALYTICS_CHANNELS as readonly string[]).includes(value);
}

export interface AnalyticsEventInput {
  notificationId: string;
  userId: string;
  eventType: RecordedEventType;
  /**
   * The channel of a `sent`, `delivered` or `failed` event. Without it,
   * `metadata.channel` names it (the WebSocket path writes "websocket", which
   * is `in_app`). Other event types have no channel.
   */
  channel?: AnalyticsChannel;
  metadata?: Record<string, unknown> | null;
  timestamp?: Date;
}

/** The channel an event is counted under, or null (see AnalyticsEventInput.channel). */
export function channelOf(event: Pick<AnalyticsEventInput, "eventType" | "channel" | "metadata">): AnalyticsChannel | null {
  if (!(CHANNEL_OUTCOMES as readonly string[]).includes(event.eventType)) return null;
  const named = event.channel ?? event.metadata?.channel;
  if (named === "websocket") return "in_app";
  return isAnalyticsChannel(named) ? named : null;
}

/**
 * Where notifications and realtime record system events. Implementations
 * batch writes off the request path; `record` never throws and never waits
 * for the database.
 */
export interface AnalyticsSink {
  record(event: AnalyticsEventInput): void;
}
