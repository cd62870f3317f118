/**
 * Browser push subscriptions of the signed-in provider, and the VAPID public
 * key the notification center subscribes with (applicationServerKey).
 */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { deletePushSubscription, loadVapidKeys, refusedPushEndpoint, savePushSubscription } from "../../channels/index.js";
import { HeraldError, notFound, validationError } from "../../errors/index.js";
import { providerId } from "../auth.js";

const base64url = z.string().min(1).max(512).regex(/^[A-Za-z0-9_-]+={0,2}$/, "must be base64url");

export const pushRoutes: FastifyPluginAsyncZod = async (app) => {
  // Push services are https; plain http is accepted outside production only (local test receivers).
  const endpoint = z
    .string()
    .max(2048)
    .refine((v) => {
      try {
        const u = new URL(v);
        return u.protocol === "https:" || (u.protocol === "http:" && app.services.config.nodeEnv !== "production");
      } catch {
        return false;
      }
    }, "must be the https URL of a push service");

  app.get(
    "/push/vapid-public-key",
    { config: { auth: "none" }, schema: { tags: ["push"], operationId: "getVapidPublicKey", summary: "The VAPID public key for PushManager.subscribe", response: { 200: z.object({ publicKey: z.string() }) } } },
    async () => ({ publicKey: loadVapidKeys(app.services.config).publicKey }),
  );

  app.post(
    "/push/subscriptions",
    {
      // 409: the endpoint is registered by another user with other keys.
      config: { auth: "provider", rateLimit: { max: 30, timeWindow: "1 minute" }, problems: [409] },
      schema: {
        tags: ["push"],
        operationId: "createPushSubscription",
        summary: "Register this browser's push subscription (PushSubscription.toJSON())",
        body: z
          .object({
            endpoint,
            expirationTime: z.number().nullable().optional(),
            keys: z.object({ p256dh: base64url, auth: base64url }).strict(),
          })
          .strict(),
        response: { 201: z.object({ id: z.string(), endpoint: z.string(), createdAt: z.string() }) },
      },
    },
    async (req, reply) => {
      const userId = providerId(req);
      const { push } = app.services.config;
      const refused = push.allowPrivate ? undefined : await refusedPushEndpoint(req.body.endpoint);
      if (refused) throw validationError("The push endpoint is not a public address", [{ field: "endpoint", message: refused }]);
      const ua = req.headers["user-agent"];
      const saved = await savePushSubscription(
        app.services.database,
        userId,
        { endpoint: req.body.endpoint, keys: req.body.keys, userAgent: typeof ua === "string" ? ua.slice(0, 512) : null },
        push.maxSubscriptions,
      );
      if (!saved) throw new HeraldError("HERALD_CONFLICT", "This push endpoint is registered by another user with other keys");
      return reply.status(201).send({ id: saved.id, endpoint: saved.endpoint, createdAt: new Date(saved.createdAt).toISOString() });
    },
  );

  app.delete(
    "/push/subscriptions",
    {
      config: { auth: "provider", problems: [404] },
      schema: {
        tags: ["push"],
        operationId: "deletePushSubscription",
        summary: "Remove this browser's push subscription",
        body: z.object({ endpoint: z.string().max(2048) }).strict(),
        response: { 204: z.null() },
      },
    },
    async (req, reply) => {
      const userId = providerId(req);
      if (!(await deletePushSubscription(app.services.database, userId, req.body.endpoint))) throw notFound("Push subscription");
      return reply.status(204).send(null);
    },
  );
};
