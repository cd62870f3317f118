/**
 * The notification routes of the REST API. Providers see and change only their own
 * (every query is scoped by the token's user, so another user's id is a 404
 * and nothing changes); creation and broadcast need an admin credential and
 * are rate limited per credential.
 */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { notFound } from "../../errors/index.js";
import {
  DELIVERY_STATUSES,
  PRIORITIES,
  createFromTemplateSchema,
  createNotificationSchema,
  notificationContentSchema,
  notificationTypeSchema,
} from "../../notifications/index.js";
import { providerId } from "../auth.js";

export const notificationDtoSchema = z.object({
  id: z.string(),
  seq: z.number(),
  userId: z.string(),
  type: z.string(),
  priority: z.enum(PRIORITIES),
  title: z.string(),
  message: z.string(),
  description: z.string().nullable(),
  icon: z.string().nullable(),
  actionUrl: z.string().nullable(),
  actionLabel: z.string().nullable(),
  read: z.boolean(),
  archived: z.boolean(),
  deliveryStatus: z.enum(DELIVERY_STATUSES),
  sentAt: z.string().nullable(),
  deliveredAt: z.string().nullable(),
  readAt: z.string().nullable(),
  relatedId: z.string().nullable(),
  data: z.record(z.string(), z.unknown()).nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

/** Per credential, from HERALD_RATE_LIMIT_PER_MINUTE. */
const creationRateLimit = (perMinute: number) => ({ max: perMinute, timeWindow: "1 minute" }) as const;

const booleanQuery = z.enum(["true", "false"]).transform((v) => v === "true");
const idParams = z.object({ id: z.uuid("must be a UUID") }).strict();

export const notificationRoutes: FastifyPluginAsyncZod = async (app) => {
  const service = () => app.services.notifications;

  app.get(
    "/notifications",
    {
      config: { auth: "provider" },
      schema: {
        tags: ["notifications"],
        summary: "The caller's notifications, newest first",
        querystring: z
          .object({
            limit: z.coerce.number().int().min(1).optional(),
            offset: z.coerce.number().int().min(0).optional(),
            read: booleanQuery.optional(),
            archived: booleanQuery.optional(),
            type: notificationTypeSchema.optional(),
          })
          .strict(),
        response: { 200: z.object({ notifications: z.array(notificationDtoSchema), total: z.number(), unreadCount: z.number() }) },
      },
    },
    async (req) => {
      const userId = providerId(req);
      const q = req.query;
      const [page, unreadCount] = await Promise.all([
        service().getNotifications(userId, {
          ...(q.limit !== undefined ? { limit: q.limit } : {}),
          ...(q.offset !== undefined ? { offset: q.offset } : {}),
          ...(q.read !== undefined ? { read: q.read } : {}),
          ...(q.archived !== undefined ? { archived: q.archived } : {}),
          ...(q.type !== undefined ? { type: q.type } : {}),
        }),
        service().getUnreadCount(userId),
      ]);
      return { ...page, unreadCount };
    },
  );

  app.get(
    "/notifications/unread-count",
    { config: { auth: "provider" }, schema: { tags: ["notifications"], response: { 200: z.object({ count: z.number() }) } } },
    async (req) => ({ count: await service().getUnreadCount(providerId(req)) }),
  );

  app.get(
    "/notifications/:id",
    { config: { auth: "provider" }, schema: { tags: ["notifications"], params: idParams, response: { 200: notificationDtoSchema } } },
    async (req) => {
      const n = await service().getNotification(providerId(req), req.params.id);
      if (!n) throw notFound("Notification");
      return n;
    },
  );

  app.patch(
    "/notifications/:id",
    {
      config: { auth: "provider" },
      schema: {
        tags: ["notifications"],
        summary: "Mark read / unread, archive / unarchive",
        params: idParams,
        body: z
          .object({ read: z.boolean().optional(), archived: z.boolean().optional() })
          .strict()
          .refine((b) => b.read !== undefined || b.archived !== undefined, "give read and/or archived"),
        response: { 200: notificationDtoSchema },
      },
    },
    async (req) => {
      const userId = providerId(req);
      const change = {
        ...(req.body.read !== undefined ? { read: req.body.read } : {}),
        ...(req.body.archived !== undefined ? { archived: req.body.archived } : {}),
      };
      const updated = await service().updateNotification(userId, req.params.id, change);
      const n = updated && (await service().getNotification(userId, req.params.id));
      if (!n) throw notFound("Notification");
      return n;
    },
  );

  app.post(
    "/notifications/read-all",
    { config: { auth: "provider" }, schema: { tags: ["notifications"], response: { 200: z.object({ updated: z.number() }) } } },
    async (req) => ({ updated: await service().markAllRead(providerId(req)) }),
  );

  app.delete(
    "/notifications/:id",
    { config: { auth: "provider" }, schema: { tags: ["notifications"], params: idParams, response: { 204: z.null() } } },
    async (req, reply) => {
      if (!(await service().deleteNotification(providerId(req), req.params.id))) throw notFound("Notification");
      return reply.status(204).send(null);
    },
  );

  app.post(
    "/notifications",
    {
      config: { auth: "admin", rateLimit: creationRateLimit(app.services.config.rateLimitPerMinute) },
      schema: {
        tags: ["notifications"],
        summary: "Create a notification for one user (admin), directly or from a template",
        body: z.union([createNotificationSchema, createFromTemplateSchema]),
        response: {
          201: z.object({ notification: notificationDtoSchema }),
          200: z.union([
            z.object({ notification: z.null(), reason: z.literal("type_disabled") }),
            // A replay of an idempotencyKey whose notification the user deleted: `id` is the original.
            z.object({ notification: z.null(), reason: z.literal("deleted"), id: z.string() }),
          ]),
        },
      },
    },
    async (req, reply) => {
      const body = req.body;
      const input =
        "templateKey" in body
          ? await service().fromTemplate(body.templateKey, body.userId, body.variables ?? {}, {
              ...(body.idempotencyKey ? { idempotencyKey: body.idempotencyKey } : {}),
              ...(body.relatedId !== undefined ? { relatedId: body.relatedId } : {}),
              ...(body.data !== undefined ? { data: body.data } : {}),
            })
          : body;
      const outcome = await service().create(input);
      switch (outcome.status) {
        case "type_disabled":
          return reply.status(200).send({ notification: null, reason: "type_disabled" as const });
        case "deleted":
          return reply.header("idempotent-replayed", "true").status(200).send({ notification: null, reason: "deleted" as const, id: outcome.id });
        case "replayed":
          reply.header("idempotent-replayed", "true");
      }
      return reply.status(201).send({ notification: outcome.notification });
    },
  );

  app.post(
    "/notifications/broadcast",
    {
      config: { auth: "admin", rateLimit: creationRateLimit(app.services.config.rateLimitPerMinute) },
      schema: {
        tags: ["notifications"],
        summary: "Create one notification for every user in the directory (admin)",
        body: notificationContentSchema,
        response: { 201: z.object({ count: z.number(), broadcastId: z.string() }) },
      },
    },
    async (req, reply) => reply.status(201).send(await service().broadcast(req.body)),
  );
};
