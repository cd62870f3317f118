/**
 * The notification routes of the REST API. Providers see and change only their own
 * (every query is scoped by the token's user, so another user's id is a 404
 * and nothing changes); creation and broadcast need an admin credential and
 * are rate limited per credential.
 */
import type { FastifySerializerCompiler } from "fastify";
import { type FastifyPluginAsyncZod, serializerCompiler } from "fastify-type-provider-zod";
import { z } from "zod";
import { notFound } from "../../errors/index.js";
import {
  DELIVERY_STATUSES,
  PRIORITIES,
  createFromTemplateSchema,
  createNotificationSchema,
  keptNotificationJson,
  type NotificationDto,
  notificationContentSchema,
  notificationTypeSchema,
  parsedCreation,
} from "../../notifications/index.js";
import { deliveryWarningSchema } from "../../users/index.js";
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

/** The notification's fields in the schema's order, as the zod serializer writes them. */
const DTO_FIELDS = Object.keys(notificationDtoSchema.shape) as (keyof z.infer<typeof notificationDtoSchema>)[];
const WARNING_FIELDS = Object.keys(deliveryWarningSchema.shape) as (keyof z.infer<typeof deliveryWarningSchema>)[];

function pick<K extends string>(value: Record<K, unknown>, fields: readonly K[]): Record<K, unknown> {
  const out = {} as Record<K, unknown>;
  for (const f of fields) out[f] = value[f];
  return out;
}

/**
 * The 201 of a creation, the API's hottest answer, serialized without a
 * runtime zod pass: the same bytes as the zod serializer (the schema's
 * fields in its order; the handler only ever sends a NotificationDto from
 * toNotificationDto and the delivery warnings). A new notification's JSON,
 * kept by the service for its push frame (withJson), is used as it is:
 * toNotificationDto writes the schema's fields in its order (a test holds
 * both to it). Other answers of the route go through the zod serializer.
 */
const createdSerializer: FastifySerializerCompiler<unknown> = (route) => {
  if (String(route.httpStatus) !== "201") return serializerCompiler(route as Parameters<typeof serializerCompiler>[0]);
  return (body: unknown) => {
    const b = body as { notification: Record<(typeof DTO_FIELDS)[number], unknown>; warnings?: Record<(typeof WARNING_FIELDS)[number], unknown>[] };
    const warnings = b.warnings ? JSON.stringify(b.warnings.map((w) => pick(w, WARNING_FIELDS))) : undefined;
    const kept = keptNotificationJson(b.notification as unknown as NotificationDto);
    if (kept !== undefined) return warnings === undefined ? `{"notification":${kept}}` : `{"notification":${kept},"warnings":${warnings}}`;
    const notification = pick(b.notification, DTO_FIELDS);
    return warnings === undefined ? JSON.stringify({ notification }) : `{"notification":${JSON.stringify(notification)},"warnings":${warnings}}`;
  };
};

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
        operationId: "listNotifications",
        summary: "The caller's notifications, newest first",
        querystring: z
          .object({
            limit: z.coerce.number().int().min(1).optional(),
            offset: z.coerce.number().int().min(0).optional(),
            read: booleanQuery.optional(),
            archived: booleanQuery.optional(),
            type: notificationTypeSchema.optional(),
            // Keyset cursor: the notifications older than this seq (a page's `next`); cheap at any depth, unlike offset.
            before: z.coerce.number().int().min(1).optional(),
          })
          .strict(),
        response: {
          200: z.object({
            notifications: z.array(notificationDtoSchema),
            total: z.number(),
            totalCapped: z.boolean().optional(),
            next: z.number().nullable(),
            unreadCount: z.number(),
          }),
        },
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
          ...(q.before !== undefined ? { before: q.before } : {}),
        }),
        service().getUnreadCount(userId),
      ]);
      return { ...page, unreadCount };
    },
  );

  app.get(
    "/notifications/unread-count",
    {
      config: { auth: "provider" },
      schema: {
        tags: ["notifications"],
        operationId: "getUnreadCount",
        summary: "How many of the caller's notifications are unread",
        response: { 200: z.object({ count: z.number() }) },
      },
    },
    async (req) => ({ count: await service().getUnreadCount(providerId(req)) }),
  );

  app.get(
    "/notifications/:id",
    {
      config: { auth: "provider" },
      schema: { tags: ["notifications"], operationId: "getNotification", summary: "One of the caller's notifications", params: idParams, response: { 200: notificationDtoSchema } },
    },
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
        operationId: "updateNotification",
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
    {
      config: { auth: "provider" },
      schema: {
        tags: ["notifications"],
        operationId: "markAllNotificationsRead",
        summary: "Mark every unread notification of the caller read",
        response: { 200: z.object({ updated: z.number() }) },
      },
    },
    async (req) => ({ updated: await service().markAllRead(providerId(req)) }),
  );

  app.post(
    "/notifications/archive-all",
    {
      config: { auth: "provider" },
      schema: {
        tags: ["notifications"],
        operationId: "archiveAllNotifications",
        summary: "Archive every notification of the caller",
        response: { 200: z.object({ updated: z.number() }) },
      },
    },
    async (req) => ({ updated: await service().archiveAll(providerId(req)) }),
  );

  app.delete(
    "/notifications/:id",
    {
      config: { auth: "provider" },
      schema: { tags: ["notifications"], operationId: "deleteNotification", summary: "Delete one of the caller's notifications", params: idParams, response: { 204: z.null() } },
    },
    async (req, reply) => {
      if (!(await service().deleteNotification(providerId(req), req.params.id))) throw notFound("Notification");
      return reply.status(204).send(null);
    },
  );

  app.post(
    "/notifications",
    {
      // 404: an unknown templateKey; 409: an idempotencyKey already used with other content.
      config: { auth: "admin", rateLimit: creationRateLimit(app.services.config.rateLimitPerMinute), problems: [404, 409] },
      serializerCompiler: createdSerializer,
      schema: {
        tags: ["notifications"],
        operationId: "createNotification",
        summary: "Create a notification for one user (admin), directly or from a template",
        body: z.union([createNotificationSchema, createFromTemplateSchema]),
        response: {
          // `warnings`: channels the user's preferences chose that cannot reach them (stored anyway; docs/auth.md).
          201: z.object({ notification: notificationDtoSchema, warnings: z.array(deliveryWarningSchema).optional() }),
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
          : parsedCreation(body); // the body schema's first branch, createNotificationSchema, parsed it
      const outcome = await service().create(input, { deliveryWarnings: true, serializeOnce: true });
      switch (outcome.status) {
        case "type_disabled":
          return reply.status(200).send({ notification: null, reason: "type_disabled" as const });
        case "deleted":
          return reply.header("idempotent-replayed", "true").status(200).send({ notification: null, reason: "deleted" as const, id: outcome.id });
        case "replayed":
          reply.header("idempotent-replayed", "true");
      }
      const warnings = outcome.warnings?.length ? { warnings: outcome.warnings } : {};
      return reply.status(201).send({ notification: outcome.notification, ...warnings });
    },
  );

  app.post(
    "/notifications/broadcast",
    {
      config: { auth: "admin", rateLimit: creationRateLimit(app.services.config.rateLimitPerMinute) },
      schema: {
        tags: ["notifications"],
        operationId: "broadcastNotification",
        summary: "Create one notification for every user in the directory (admin)",
        body: notificationContentSchema,
        response: { 201: z.object({ count: z.number(), broadcastId: z.string() }) },
      },
    },
    async (req, reply) => reply.status(201).send(await service().broadcast(req.body)),
  );
};
