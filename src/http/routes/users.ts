/**
 * The user directory (admin): PUT creates or updates, GET reads (with each
 * channel's deliverability), GET /users lists by keyset pages, DELETE erases
 * everything Herald holds about the user (docs/auth.md). The routes acting for
 * a user (preferences, test digest) are in users-on-behalf.ts.
 */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { notFound } from "../../errors/index.js";
import { CloseCodes } from "../../protocol/index.js";
import { USER_PAGE_MAX, UserErasure, deliverabilityOf, deliverabilitySchema, readRecipient, existingUserIdSchema, userFieldsSchema, userIdSchema } from "../../users/index.js";
import { userOnBehalfRoutes } from "./users-on-behalf.js";

const userSchema = z.object({
  id: z.string(),
  email: z.string().nullable(),
  phone: z.string().nullable(),
  name: z.string().nullable(),
  timezone: z.string(),
  locale: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
const params = z.object({ id: userIdSchema }).strict();
/** Reading, checking or erasing a user takes any id a token can carry, not only the directory's stricter ids. */
const existingParams = z.object({ id: existingUserIdSchema }).strict();
const listQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(USER_PAGE_MAX).default(50),
    cursor: z.string().min(1).max(1024).optional(),
    q: z.string().min(1).max(320).optional(),
  })
  .strict();

export const userRoutes: FastifyPluginAsyncZod = async (app) => {
  const users = () => app.services.users;
  // Built on first use: the services are all there by then (the composition root decorates before routes run).
  let erasure: UserErasure | undefined;
  const erasureOf = () =>
    (erasure ??= new UserErasure({
      database: app.services.database,
      cache: app.services.notifications.deps.cache,
      // Acks and session rows first: flushing the delivery log records analytics events, then those are flushed.
      flushBuffers: async () => {
        await app.services.realtime.flushDeliveryLog();
        await app.services.analytics.deps.analytics.flush();
      },
      disconnect: (userId) => app.services.realtime.disconnectUser(userId, CloseCodes.userErased, "user erased"),
    }));

  app.get(
    "/users",
    {
      config: { auth: "admin" },
      schema: {
        tags: ["users"],
        operationId: "listUsers",
        summary: "The user directory in id order, a page at a time (`next` is the cursor of the following page; `q` filters by id or e-mail prefix)",
        querystring: listQuery,
        response: { 200: z.object({ users: z.array(userSchema), next: z.string().nullable() }) },
      },
    },
    async (req) => users().list(req.query),
  );

  app.put(
    "/users/:id",
    {
      config: { auth: "admin" },
      schema: {
        tags: ["users"],
        operationId: "upsertUser",
        summary: "Create or update a provider (fields left out keep their value; null clears)",
        params,
        body: userFieldsSchema,
        response: { 200: userSchema },
      },
    },
    async (req) => users().upsert({ ...req.body, id: req.params.id }),
  );

  app.get(
    "/users/:id",
    {
      config: { auth: "admin" },
      schema: {
        tags: ["users"],
        operationId: "getUser",
        summary: "A provider, with whether each channel can reach them (`deliverability`)",
        params: existingParams,
        response: { 200: userSchema.extend({ deliverability: deliverabilitySchema }) },
      },
    },
    async (req) => {
      const [user, recipient] = await Promise.all([users().get(req.params.id), readRecipient(app.services.database, req.params.id)]);
      if (!user) throw notFound("User");
      return { ...user, deliverability: deliverabilityOf(recipient) };
    },
  );

  app.get(
    "/users/:id/deliverability",
    {
      config: { auth: "admin" },
      schema: {
        tags: ["users"],
        operationId: "getUserDeliverability",
        summary: "Whether each channel can reach a user id, whether or not it is in the directory",
        params: existingParams,
        response: { 200: deliverabilitySchema },
      },
    },
    async (req) => deliverabilityOf(await readRecipient(app.services.database, req.params.id)),
  );

  app.delete(
    "/users/:id",
    {
      config: { auth: "admin" },
      schema: {
        tags: ["users"],
        operationId: "eraseUser",
        summary: "Erase a user: every notification, preference, event, subscription, digest and session, and the directory entry, in one transaction; live connections close with 4410",
        params: existingParams,
        response: { 204: z.null() },
      },
    },
    async (req, reply) => {
      const result = await erasureOf().erase(req.params.id);
      if (!result.found) throw notFound("User");
      req.log.info({ deleted: result.deleted }, "user erased");
      return reply.status(204).send(null);
    },
  );

  await app.register(userOnBehalfRoutes);
};
