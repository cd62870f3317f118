/**
 * The analytics counts of docs/delivery.md, as pure functions: counts of distinct notifications per
 * event type and the three rates derived from them.
 */
import { ANALYTICS_CHANNELS, type AnalyticsChannel, CHANNEL_OUTCOMES, type ChannelOutcome, EVENT_TYPES, type EventType } from "./events.js";

export type EventCounts = Record<EventType, number>;

export interface Rates {
  /** delivered / sent, in percent with two decimals (0 when nothing was sent). */
  deliveryRate: number;
  /** opened / delivered, in percent with two decimals (0 when nothing was delivered). */
  openRate: number;
  /** clicked / delivered, in percent with two decimals (0 when nothing was delivered). */
  clickRate: number;
}

export type Metrics = EventCounts & Rates;

/** numerator / denominator as a percentage rounded to two decimals; 0 when the denominator is 0. */
export function rate(numerator: number, denominator: number): number {
  if (!denominator) return 0;
  // Round on the integer scale (basis points) so 2/3 is 66.67, not 66.66999.
  return Math.round((numerator * 10_000) / denominator) / 100;
}

export function zeroCounts(): EventCounts {
  return { sent: 0, delivered: 0, opened: 0, clicked: 0, archived: 0, deleted: 0 };
}

export function withRates(counts: EventCounts): Metrics {
  return {
    ...counts,
    deliveryRate: rate(counts.delivered, counts.sent),
    openRate: rate(counts.opened, counts.delivered),
    clickRate: rate(counts.clicked, counts.delivered),
  };
}

/** Folds rows of (event_type, count) into counts; unknown event types are ignored. */
export function countsFrom(rows: Iterable<{ event_type: string; n: number | string }>, into: EventCounts = zeroCounts()): EventCounts {
  for (const r of rows) {
    if ((EVENT_TYPES as readonly string[]).includes(r.event_type)) into[r.event_type as EventType] += Number(r.n);
  }
  return into;
}

/** One channel's counts: distinct notifications (digests, for the digest channel) per outcome. */
export type ChannelCounts = Record<ChannelOutcome, number>;
/** Every channel's counts (a trend filtered to one channel holds only that one). */
export type ByChannel = Record<AnalyticsChannel, ChannelCounts>;

export function zeroByChannel(channels: readonly AnalyticsChannel[] = ANALYTICS_CHANNELS): Partial<ByChannel> {
  return Object.fromEntries(channels.map((c) => [c, { sent: 0, delivered: 0, failed: 0 }]));
}

/** Folds rows of (channel, outcome, count) into `into`; channels or outcomes it does not hold are ignored. */
export function channelCountsFrom(rows: Iterable<{ channel: string; outcome: string; n: number | string }>, into: Partial<ByChannel>): Partial<ByChannel> {
  for (const r of rows) {
    const counts = into[r.channel as AnalyticsChannel];
    if (counts && (CHANNEL_OUTCOMES as readonly string[]).includes(r.outcome)) counts[r.outcome as ChannelOutcome] += Number(r.n);
  }
  return into;
}

export const TREND_INTERVALS = ["day", "week", "month"] as const;
export type TrendInterval = (typeof TREND_INTERVALS)[number];

export const TOP_BY = ["open", "click"] as const;
export type TopBy = (typeof TOP_BY)[number];


const QUARTER_HOUR = 15 * 60 * 1000;
export const floorQuarter = (t: number) => Math.floor(t / QUARTER_HOUR) * QUARTER_HOUR;
export const ceilQuarter = (t: number) => Math.ceil(t / QUARTER_HOUR) * QUARTER_HOUR;
