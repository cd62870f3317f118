/** GET|PATCH /api/preferences: the caller's own preferences (defaults until first saved). */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { preferencesSchema, preferencesUpdateSchema } from "../../preferences/index.js";
import { providerId } from "../auth.js";


export const preferenceRoutes: FastifyPluginAsyncZod = async (app) => {
  const prefs = () => app.services.notifications.preferences;

  app.get(
    "/preferences",
    {
      config: { auth: "provider" },
      schema: { tags: ["preferences"], operationId: "getPreferences", summary: "The caller's preferences (the defaults until first saved)", response: { 200: preferencesSchema } },
    },
    async (req) => prefs().get(providerId(req)),
  );

  app.patch(
    "/preferences",
    {
      config: { auth: "provider" },
      schema: {
        tags: ["preferences"],
        operationId: "updatePreferences",
        summary: "Change some of the caller's preferences (fields left out keep their value; unknown fields are refused)",
        body: preferencesUpdateSchema,
        response: { 200: preferencesSchema },
      },
    },
    async (req) => prefs().update(providerId(req), req.body),
  );
};
