/**
 * The digest routes of the REST API. Providers trigger a test digest and read their
 * own stats and history (scoped by the token's user); admins read any user's
 * (404 for a user not in the directory).
 */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { DIGEST_FREQUENCIES } from "../../digests/index.js";
import { notFound } from "../../errors/index.js";
import { providerId } from "../auth.js";

/** A digest as the REST API answers it (also the admin per-user routes, users-*.ts). */
export const digestSchema = z.object({
  id: z.string(),
  userId: z.string(),
  frequency: z.enum(DIGEST_FREQUENCIES),
  status: z.enum(["pending", "sent", "skipped", "failed"]),
  scheduledFor: z.string(),
  windowStart: z.string().nullable(),
  sentAt: z.string().nullable(),
  emailAddress: z.string(),
  subject: z.string().nullable(),
  htmlContent: z.string().nullable(),
  textContent: z.string().nullable(),
  notificationCount: z.number(),
  attempts: z.number(),
  nextAttemptAt: z.string().nullable(),
  lastError: z.string().nullable(),
  messageId: z.string().nullable(),
  isTest: z.boolean(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

const statsSchema = z.object({
  totalSent: z.number(),
  totalFailed: z.number(),
  totalSkipped: z.number(),
  totalPending: z.number(),
  totalTest: z.number(),
  lastSentAt: z.string().nullable(),
  lastFailedAt: z.string().nullable(),
  lastError: z.string().nullable(),
  enabled: z.boolean(),
  frequency: z.enum(DIGEST_FREQUENCIES),
  timezone: z.string(),
  nextScheduledAt: z.string().nullable(),
});

/** POST .../digests/test: the frequency whose period the test digest covers (daily when left out). */
export const testDigestBody = z.object({ frequency: z.enum(DIGEST_FREQUENCIES).default("daily") }).strict().default({ frequency: "daily" });

const pageQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(100).optional(),
    offset: z.coerce.number().int().min(0).optional(),
  })
  .strict();
const historySchema = z.object({ digests: z.array(digestSchema), total: z.number() });
const userParams = z.object({ id: z.string().min(1).max(255) }).strict();


export const digestRoutes: FastifyPluginAsyncZod = async (app) => {
  const service = () => app.services.digests;

  app.post(
    "/digests/test",
    {
      // Each call sends a real e-mail: keep it to a handful per credential.
      // 404: the caller is not in the user directory; 409: the caller has no e-mail address.
      config: { auth: "provider", rateLimit: { max: 5, timeWindow: "1 minute" }, problems: [404, 409] },
      schema: {
        tags: ["digests"],
        operationId: "sendTestDigest",
        summary: "Send the caller a digest of the last period now (a test, outside the schedule)",
        body: testDigestBody,
        response: { 200: digestSchema },
      },
    },
    async (req) => service().sendTestDigest(providerId(req), req.body.frequency),
  );

  app.get(
    "/digests/stats",
    {
      config: { auth: "provider" },
      schema: { tags: ["digests"], operationId: "getDigestStats", summary: "The caller's digest totals and next scheduled time", response: { 200: statsSchema } },
    },
    async (req) => service().getDigestStats(providerId(req)),
  );

  app.get(
    "/digests",
    {
      config: { auth: "provider" },
      schema: {
        tags: ["digests"],
        operationId: "listDigests",
        summary: "The caller's digest history, newest first",
        querystring: pageQuery,
        response: { 200: historySchema },
      },
    },
    async (req) => service().listDigests(providerId(req), req.query),
  );

  app.get(
    "/admin/users/:id/digests",
    {
      config: { auth: "admin" },
      schema: {
        tags: ["digests", "admin"],
        operationId: "listUserDigests",
        summary: "A user's digest history",
        params: userParams,
        querystring: pageQuery,
        response: { 200: historySchema },
      },
    },
    async (req) => {
      if (!(await service().hasUser(req.params.id))) throw notFound("User");
      return service().listDigests(req.params.id, req.query);
    },
  );

  app.get(
    "/admin/users/:id/digests/stats",
    {
      config: { auth: "admin" },
      schema: { tags: ["digests", "admin"], operationId: "getUserDigestStats", summary: "A user's digest totals", params: userParams, response: { 200: statsSchema } },
    },
    async (req) => {
      if (!(await service().hasUser(req.params.id))) throw notFound("User");
      return service().getDigestStats(req.params.id);
    },
  );
};
