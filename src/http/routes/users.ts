/** The user directory (admin): PUT creates or updates, GET reads. */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { notFound } from "../../errors/index.js";
import { userFieldsSchema, userIdSchema } from "../../users/index.js";

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

export const userRoutes: FastifyPluginAsyncZod = async (app) => {
  app.put(
    "/users/:id",
    {
      config: { auth: "admin" },
      schema: {
        tags: ["users"],
        summary: "Create or update a provider (fields left out keep their value; null clears)",
        params,
        body: userFieldsSchema,
        response: { 200: userSchema },
      },
    },
    async (req) => app.services.users.upsert({ ...req.body, id: req.params.id }),
  );

  app.get("/users/:id", { config: { auth: "admin" }, schema: { tags: ["users"], params, response: { 200: userSchema } } }, async (req) => {
    const user = await app.services.users.get(req.params.id);
    if (!user) throw notFound("User");
    return user;
  });
};
