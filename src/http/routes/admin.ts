/** Operators' views: the out-of-app delivery queue and the live WebSocket connections. */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { QUEUE_STATUSES, listQueue } from "../../channels/index.js";

/**
 * What each stored state means (src/channels/queue-sql.ts). `held` is a member of an hourly bundle only: a
 * send waiting for quiet hours to end (or for the e-mail "unseen" delay, or a retry) is `pending` with a
 * later `nextRetryAt`; the filter matches the stored state, and this says which to ask for.
 */
const QUEUE_STATUS_MEANINGS =
  "held: a member of an hourly bundle, sent with its bundle row. " +
  "pending: waiting until nextRetryAt, which includes a send held by quiet hours (nextRetryAt is their end), " +
  "an e-mail waiting to be seen in-app first, and a retry. " +
  "processing: claimed by a worker. sent. failed: given up (lastError says why). " +
  "cancelled: no longer wanted (the notification was read, archived or deleted, or the preferences changed).";
const queueStatus = z.enum(QUEUE_STATUSES).describe(QUEUE_STATUS_MEANINGS);

const queueRow = z.object({
  id: z.string(),
  notificationId: z.string(),
  userId: z.string(),
  channel: z.string(),
  kind: z.enum(["single", "bundle", "member"]),
  status: z.string().describe(QUEUE_STATUS_MEANINGS),
  attempts: z.number(),
  maxAttempts: z.number(),
  nextRetryAt: z.string(),
  lastError: z.string().nullable(),
  lockedBy: z.string().nullable(),
  sentAt: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

export const adminRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    "/admin/queue",
    {
      config: { auth: "admin" },
      schema: {
        tags: ["admin"],
        operationId: "listDeliveryQueue",
        summary: "Out-of-app delivery queue rows, most recently changed first (a send held by quiet hours is pending, not held)",
        querystring: z
          .object({
            status: queueStatus.optional(),
            channel: z.enum(["email", "push", "sms"]).optional(),
            userId: z.string().min(1).max(200).optional(),
            limit: z.coerce.number().int().min(1).max(500).default(50),
            offset: z.coerce.number().int().min(0).default(0),
          })
          .strict(),
        response: { 200: z.object({ rows: z.array(queueRow), total: z.number() }) },
      },
    },
    async (req) => listQueue(app.services.database, req.query),
  );

  app.get(
    "/admin/connections",
    {
      config: { auth: "admin" },
      schema: {
        tags: ["admin"],
        operationId: "listConnections",
        summary: "Live WebSocket connections and connected providers (whole cluster)",
        response: { 200: z.object({ connectedClients: z.number(), connectedProviders: z.array(z.string()) }) },
      },
    },
    async () => {
      const realtime = app.services.realtime;
      const [clients, providers] = await Promise.all([realtime.getConnectedClientsCount(), realtime.getConnectedProviders()]);
      return { connectedClients: clients, connectedProviders: [...providers] };
    },
  );
};
