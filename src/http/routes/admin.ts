/** Operators' views: the out-of-app delivery queue and the live WebSocket connections. */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { QUEUE_STATUSES, listQueue } from "../../channels/index.js";

const queueRow = z.object({
  id: z.string(),
  notificationId: z.string(),
  userId: z.string(),
  channel: z.string(),
  kind: z.enum(["single", "bundle", "member"]),
  status: z.string(),
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
        summary: "Out-of-app delivery queue rows, most recently changed first",
        querystring: z
          .object({
            status: z.enum(QUEUE_STATUSES).optional(),
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
