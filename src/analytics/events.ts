/** The six analytics event types of the guide, and the sink other domains write to. */
export const EVENT_TYPES = ["sent", "delivered", "opened", "clicked", "archived", "deleted"] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** What a client observes and a provider may track; Herald records the others itself. */
export const CLIENT_EVENT_TYPES = ["opened", "clicked"] as const satisfies readonly EventType[];

export function isEventType(value: unknown): value is EventType {
  return typeof value === "string" && (EVENT_TYPES as readonly string[]).includes(value);
}

export interface AnalyticsEventInput {
  notificationId: string;
  userId: string;
  eventType: EventType;
  metadata?: Record<string, unknown> | null;
  timestamp?: Date;
}

/**
 * Where notifications and realtime record system events. Implementations
 * batch writes off the request path; `record` never throws and never waits
 * for the database.
 */
export interface AnalyticsSink {
  record(event: AnalyticsEventInput): void;
}
