/** GET|PATCH /api/preferences: the caller's own preferences (defaults until first saved). */
import type { FastifyRequest } from "fastify";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { preferencesSchema, preferencesUpdateSchema } from "../../preferences/index.js";
import { requireProvider } from "../auth.js";

const provider = async (req: FastifyRequest) => {
  await requireProvider(req);
};

export const preferenceRoutes: FastifyPluginAsyncZod = async (app) => {
  const prefs = () => app.services.notifications.preferences;

  app.get(
    "/preferences",
    { onRequest: provider, schema: { tags: ["preferences"], response: { 200: preferencesSchema } } },
    async (req) => prefs().get(await requireProvider(req)),
  );

  app.patch(
    "/preferences",
    {
      onRequest: provider,
      schema: { tags: ["preferences"], summary: "Partial update; unknown fields are refused", body: preferencesUpdateSchema, response: { 200: preferencesSchema } },
    },
    async (req) => prefs().update(await requireProvider(req), req.body),
  );
};
