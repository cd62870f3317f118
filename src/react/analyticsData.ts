/**
 * What the dashboard reads from the admin analytics API, normalised into the
 * shapes its widgets draw. The rates are the server's (docs/delivery.md, Analytics: percentages
 * with two decimals, 0 when the denominator is 0); nothing is recomputed here.
 */
import type { HeraldApi } from "./api.js";
import { type ChannelRow, toChannelRows } from "./ChannelBreakdown.js";

export type Interval = "day" | "week" | "month";

/** The window each view covers: 30 days by day, 12 weeks by week, 12 months by month. */
export const WINDOW_DAYS: Record<Interval, number> = { day: 30, week: 84, month: 365 };

export interface Headline {
  sent: number;
  delivered: number;
  opened: number;
  clicked: number;
  deliveryRate: number;
  openRate: number;
  clickRate: number;
}

export interface TrendPoint {
  bucket: string;
  sent: number;
  delivered: number;
  opened: number;
  clicked: number;
}

export interface TypeRow extends Headline {
  type: string;
}

export interface TopRow {
  id: string;
  title: string;
  type: string;
  sent: number;
  opened: number;
  clicked: number;
  openRate: number;
  clickRate: number;
}

export interface DashboardData {
  headline: Headline;
  trends: TrendPoint[];
  byType: TypeRow[];
  byChannel: ChannelRow[];
  top: TopRow[];
  /** Every event committed before this instant is counted (the overview's asOf); null if the server did not say. */
  asOf: Date | null;
}

type Obj = Record<string, unknown>;
const num = (v: unknown): number => (typeof v === "number" ? v : typeof v === "string" && v !== "" ? Number(v) : 0);
const str = (v: unknown): string => (v === null || v === undefined ? "" : String(v));

/** The first array found among `keys` of `body`, or `body` itself when it is one. */
function listOf(body: unknown, keys: string[]): Obj[] {
  if (Array.isArray(body)) return body as Obj[];
  if (body && typeof body === "object") {
    for (const k of keys) {
      const v = (body as Obj)[k];
      if (Array.isArray(v)) return v as Obj[];
    }
  }
  return [];
}

export function toHeadline(o: Obj): Headline {
  const src = (o.totals && typeof o.totals === "object" ? { ...o, ...(o.totals as Obj) } : o) as Obj;
  return {
    sent: num(src.sent ?? src.totalSent),
    delivered: num(src.delivered ?? src.totalDelivered),
    opened: num(src.opened ?? src.totalOpened),
    clicked: num(src.clicked ?? src.totalClicked),
    deliveryRate: num(src.deliveryRate),
    openRate: num(src.openRate),
    clickRate: num(src.clickRate),
  };
}

export function toTrends(body: unknown): TrendPoint[] {
  return listOf(body, ["buckets", "points", "trends", "series", "data"]).map((p) => ({
    bucket: str(p.local ?? p.bucket ?? p.period ?? p.date ?? p.start),
    sent: num(p.sent),
    delivered: num(p.delivered),
    opened: num(p.opened),
    clicked: num(p.clicked),
  }));
}

export function toTypeRows(body: unknown): TypeRow[] {
  if (body && typeof body === "object" && !Array.isArray(body) && !listOf(body, ["byType", "types", "rows", "data"]).length) {
    // A map keyed by type: { new_message: {...}, ... }
    return Object.entries(body as Obj)
      .filter(([, v]) => v && typeof v === "object")
      .map(([type, v]) => ({ type, ...toHeadline(v as Obj) }));
  }
  return listOf(body, ["byType", "types", "rows", "data"]).map((r) => ({ type: str(r.type), ...toHeadline(r) }));
}

export function toTopRows(body: unknown): TopRow[] {
  return listOf(body, ["notifications", "top", "rows", "data"]).map((r) => {
    const h = toHeadline(r);
    return {
      id: str(r.notificationId ?? r.id),
      title: str(r.title) || str(r.notificationId ?? r.id).slice(0, 8),
      type: str(r.type),
      sent: h.sent,
      opened: h.opened,
      clicked: h.clicked,
      openRate: h.openRate,
      clickRate: h.clickRate,
    };
  });
}

export async function fetchDashboard(api: HeraldApi, interval: Interval, timeZone = localTimeZone()): Promise<DashboardData> {
  const days = WINDOW_DAYS[interval];
  const tz = timeZone ? `&tz=${encodeURIComponent(timeZone)}` : "";
  const [overview, trends, top] = await Promise.all([
    api.request<Obj>("GET", `/api/analytics/overview?days=${days}`),
    api.request<unknown>("GET", `/api/analytics/trends?interval=${interval}&days=${days}${tz}`),
    // minDelivered=1: a small installation still sees its best notifications.
    api.request<unknown>("GET", `/api/analytics/top?by=open&limit=5&minDelivered=1`),
  ]);
  return {
    headline: toHeadline(overview),
    trends: toTrends(trends),
    byType: toTypeRows(overview.byType ?? []),
    byChannel: toChannelRows(overview.byChannel),
    top: toTopRows(top),
    asOf: typeof overview.asOf === "string" && !Number.isNaN(Date.parse(overview.asOf)) ? new Date(overview.asOf) : null,
  };
}

/** Trends are bucketed in the viewer's time zone, so "today" is the viewer's day. */
function localTimeZone(): string | undefined {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
}

export function exportPath(interval: Interval): string {
  return `/api/analytics/export?format=csv&kind=events&days=${WINDOW_DAYS[interval]}`;
}
