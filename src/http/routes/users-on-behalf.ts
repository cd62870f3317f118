/**
 * The admin acting for one user (#19.2): what a provider does for themself
 * with their own token (GET|PATCH /api/preferences, POST /api/digests/test),
 * an admin credential does here for any user id, through the same schemas and
 * services (the preferences cache is the shared one, so every instance sees
 * the change).
 */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { preferencesSchema, preferencesUpdateSchema } from "../../preferences/index.js";
import { existingUserIdSchema } from "../../users/index.js";
import { digestSchema, testDigestBody } from "./digests.js";

const params = z.object({ id: existingUserIdSchema }).strict();

export const userOnBehalfRoutes: FastifyPluginAsyncZod = async (app) => {
  const prefs = () => app.services.notifications.preferences;

  app.get(
    "/users/:id/preferences",
    {
      config: { auth: "admin" },
      schema: {
        tags: ["users", "preferences"],
        operationId: "getUserPreferences",
        summary: "A user's preferences (the defaults until first saved)",
        params,
        response: { 200: preferencesSchema },
      },
    },
    async (req) => prefs().get(req.params.id),
  );

  app.patch(
    "/users/:id/preferences",
    {
      config: { auth: "admin" },
      schema: {
        tags: ["users", "preferences"],
        operationId: "updateUserPreferences",
        summary: "Partial update of a user's preferences, as PATCH /api/preferences; unknown fields are refused",
        params,
        body: preferencesUpdateSchema,
        response: { 200: preferencesSchema },
      },
    },
    async (req) => prefs().update(req.params.id, req.body),
  );

  app.post(
    "/users/:id/digests/test",
    {
      // Each call sends a real e-mail: a handful per credential, as the provider's route. 409: the user has no e-mail address.
      config: { auth: "admin", rateLimit: { max: 5, timeWindow: "1 minute" }, problems: [409] },
      // No body at all (no content type either) means the defaults: Fastify hands validation a null body.
      preValidation: async (req) => {
        (req as { body: unknown }).body ??= {};
      },
      schema: {
        tags: ["users", "digests"],
        operationId: "sendUserTestDigest",
        summary: "Send a user a digest of the last period now (a test, outside the schedule); the body is optional",
        params,
        body: testDigestBody,
        response: { 200: digestSchema },
      },
    },
    async (req) => app.services.digests.sendTestDigest(req.params.id, req.body.frequency),
  );
};
