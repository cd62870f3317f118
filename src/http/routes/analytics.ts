/**
 * The analytics routes of the REST API. Providers track what their client observed
 * (opened, clicked) on their own notifications (another's is a 404, nothing
 * recorded); an admin credential tracks any type. Providers read their own
 * metrics; everything platform-wide, per user or per notification needs an
 * admin credential. Exports are streamed as attachments.
 */
import { Readable } from "node:stream";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { ANALYTICS_CHANNELS, EVENT_TYPES, EXPORT_FORMATS, EXPORT_KINDS, TOP_BY, TREND_INTERVALS } from "../../analytics/index.js";
import { callerOf, providerId } from "../auth.js";

/** One count per event type (EventCounts), then the rates derived from them (Metrics). */
const counts = {
  sent: z.number(),
  delivered: z.number(),
  opened: z.number(),
  clicked: z.number(),
  archived: z.number(),
  deleted: z.number(),
};
const rates = { ...counts, deliveryRate: z.number(), openRate: z.number(), clickRate: z.number() };
const countsSchema = z.object(counts);
/** Per channel (ANALYTICS_CHANNELS): sent, delivered where the channel reports it (the WebSocket ack), failed for good. */
const channelCounts = z.object({ sent: z.number(), delivered: z.number(), failed: z.number() });
const byChannelSchema = z.object({ in_app: channelCounts, email: channelCounts, push: channelCounts, sms: channelCounts, digest: channelCounts });
const userMetricsSchema = z.object({ userId: z.string(), days: z.number(), since: z.string(), until: z.string(), ...rates, byChannel: byChannelSchema });
const typeMetricsSchema = z.array(z.object({ type: z.string(), ...rates }));
const notificationMetricsSchema = z.object({ notificationId: z.string(), ...rates, events: countsSchema, byChannel: byChannelSchema });
/** How fresh the figures are (analytics rollups are maintained by a roll-up pass, #17). */
const asOfSchema = z.string().nullable().describe("Every event committed before this instant is counted (the rollups caught up just before the figures were computed); null before the first roll-up");
const trendsSchema = z.object({
  interval: z.enum(TREND_INTERVALS),
  asOf: asOfSchema,
  timeZone: z.string(),
  channel: z.enum(ANALYTICS_CHANNELS).nullable(),
  since: z.string(),
  until: z.string(),
  buckets: z.array(z.object({ start: z.string(), local: z.string(), ...rates, byChannel: byChannelSchema.partial() })),
});
const topSchema = z.array(z.object({ id: z.string(), broadcast: z.boolean(), type: z.string(), title: z.string().nullable(), ...rates }));
const overviewSchema = z.object({
  asOf: asOfSchema,
  days: z.number().nullable(),
  since: z.string().nullable(),
  until: z.string(),
  events: z.number(),
  ...rates,
  byType: typeMetricsSchema,
  byChannel: byChannelSchema,
});

const days = z.coerce.number().int().min(1).max(3650);
const daysQuery = z.object({ days: days.optional() }).strict();

export const analyticsRoutes: FastifyPluginAsyncZod = async (app) => {
  const service = () => app.services.analytics;

  app.post(
    "/analytics/events",
    {
      // 404: no such notification (or, for a provider, another user's).
      config: { auth: "provider-or-admin", rateLimit: { max: 1200, timeWindow: "1 minute" }, problems: [404] },
      schema: {
        tags: ["analytics"],
        operationId: "trackEvent",
        summary: "Track an event (batched; 202): a provider what its client observed (opened, clicked) on its own notification; an admin any type",
        body: z
          .object({
            notificationId: z.uuid("must be a UUID"),
            eventType: z.enum(EVENT_TYPES),
            metadata: z.record(z.string(), z.unknown()).nullable().optional(),
          })
          .strict(),
        response: { 202: z.object({ accepted: z.literal(true) }) },
      },
    },
    async (req, reply) => {
      const { notificationId, eventType, metadata } = req.body;
      const caller = callerOf(req);
      if (caller.kind === "admin") await service().trackEventForOwner(notificationId, eventType, metadata ?? null);
      else await service().trackOwnEvent(caller.userId, notificationId, eventType, metadata ?? null);
      return reply.status(202).send({ accepted: true as const });
    },
  );

  app.get(
    "/analytics/me",
    { config: { auth: "provider" }, schema: { tags: ["analytics"], operationId: "getMyMetrics", summary: "The caller's metrics over `days` (default 30)", querystring: daysQuery, response: { 200: userMetricsSchema } } },
    async (req) => service().getUserMetrics(providerId(req), req.query.days ?? 30),
  );

  app.get(
    "/analytics/me/by-type",
    { config: { auth: "provider" }, schema: { tags: ["analytics"], operationId: "getMyMetricsByType", summary: "The caller's metrics per notification type", querystring: daysQuery, response: { 200: typeMetricsSchema } } },
    async (req) => service().getMetricsByType(providerId(req), req.query.days ?? 30),
  );

  app.get(
    "/analytics/notifications/:id",
    {
      config: { auth: "admin" },
      schema: {
        tags: ["analytics"],
        operationId: "getNotificationMetrics",
        summary: "One notification's metrics",
        params: z.object({ id: z.uuid("must be a UUID") }).strict(),
        response: { 200: notificationMetricsSchema },
      },
    },
    async (req) => service().getNotificationMetrics(req.params.id, { requireExisting: true }),
  );

  const userParams = z.object({ id: z.string().min(1).max(255) }).strict();
  app.get(
    "/analytics/users/:id",
    { config: { auth: "admin" }, schema: { tags: ["analytics"], operationId: "getUserMetrics", summary: "A user's metrics", params: userParams, querystring: daysQuery, response: { 200: userMetricsSchema } } },
    async (req) => service().getUserMetrics(req.params.id, req.query.days ?? 30),
  );

  app.get(
    "/analytics/users/:id/by-type",
    { config: { auth: "admin" }, schema: { tags: ["analytics"], operationId: "getUserMetricsByType", summary: "A user's metrics per type", params: userParams, querystring: daysQuery, response: { 200: typeMetricsSchema } } },
    async (req) => service().getMetricsByType(req.params.id, req.query.days ?? 30),
  );

  app.get(
    "/analytics/trends",
    {
      config: { auth: "admin" },
      schema: {
        tags: ["analytics"],
        operationId: "getTrends",
        summary: "Platform engagement per day, week (ISO, from Monday) or month of local time in `tz`",
        querystring: z
          .object({
            interval: z.enum(TREND_INTERVALS).optional(),
            days: days.optional(),
            tz: z.string().min(1).max(64).optional(),
            userId: z.string().min(1).max(255).optional(),
            channel: z.enum(ANALYTICS_CHANNELS).optional(),
          })
          .strict(),
        response: { 200: trendsSchema },
      },
    },
    async (req) => service().getTrends({ interval: req.query.interval, days: req.query.days, timeZone: req.query.tz, userId: req.query.userId, channel: req.query.channel }),
  );

  app.get(
    "/analytics/top",
    {
      config: { auth: "admin" },
      schema: {
        tags: ["analytics"],
        operationId: "listTopNotifications",
        summary: "Best notifications (broadcasts or single) by open or click rate, with a minimum of deliveries",
        querystring: z
          .object({
            by: z.enum(TOP_BY).default("open").describe("Rank by open rate or click rate"),
            limit: z.coerce.number().int().min(1).max(100).default(10).describe("How many to answer"),
            // 1: a new or small installation sees its best notifications at once (the dashboard asks the same).
            minDelivered: z.coerce
              .number()
              .int()
              .min(1)
              .default(1)
              .describe("Leave out notifications delivered fewer times than this (a rate over few deliveries says little)"),
          })
          .strict(),
        response: { 200: topSchema },
      },
    },
    async (req) => service().getTopNotifications(req.query),
  );

  app.get(
    "/analytics/overview",
    { config: { auth: "admin" }, schema: { tags: ["analytics"], operationId: "getOverview", summary: "Platform-wide totals (all time or the last `days`)", querystring: daysQuery, response: { 200: overviewSchema } } },
    async (req) => service().getOverview({ days: req.query.days }),
  );

  app.get(
    "/analytics/export",
    {
      config: { auth: "admin" },
      schema: {
        tags: ["analytics"],
        operationId: "exportAnalytics",
        summary: "Events or per-notification aggregates as CSV or JSON, streamed",
        querystring: z
          .object({ format: z.enum(EXPORT_FORMATS).optional(), kind: z.enum(EXPORT_KINDS).optional(), days: days.optional(), userId: z.string().min(1).max(255).optional() })
          .strict(),
        response: {
          200: {
            description: "An attachment: CSV (RFC 4180, a header row) or a JSON array of rows",
            content: { "text/csv": { schema: z.string() }, "application/json": { schema: z.array(z.record(z.string(), z.union([z.string(), z.number(), z.null()]))) } },
          },
        },
      },
    },
    async (req, reply) => {
      const format = req.query.format ?? "csv";
      const kind = req.query.kind ?? "events";
      const chunks = service().exportData({ format, kind, days: req.query.days, userId: req.query.userId });
      const stamp = new Date().toISOString().slice(0, 10);
      return reply
        .type(format === "csv" ? "text/csv; charset=utf-8" : "application/json; charset=utf-8")
        .header("content-disposition", `attachment; filename="herald-${kind}-${stamp}.${format}"`)
        .header("cache-control", "no-store")
        // A stream is piped as it is (never serialized): the 200 schema above only describes it.
        .send(Readable.from(chunks) as never);
    },
  );
};
