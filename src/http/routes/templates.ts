/** Notification templates CRUD (admin). */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { notFound } from "../../errors/index.js";
import { templateCreateSchema, templateKeySchema, templateUpdateSchema } from "../../notifications/index.js";

const templateSchema = z.object({
  id: z.string(),
  key: z.string(),
  type: z.string(),
  priority: z.string().nullable(),
  titleTemplate: z.string(),
  messageTemplate: z.string(),
  descriptionTemplate: z.string().nullable(),
  icon: z.string().nullable(),
  actionUrlTemplate: z.string().nullable(),
  actionLabelTemplate: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
const params = z.object({ key: templateKeySchema }).strict();

export const templateRoutes: FastifyPluginAsyncZod = async (app) => {
  const templates = () => app.services.notifications.templates;
  const tags = ["templates"];

  app.post(
    "/templates",
    {
      // 409: a template with this key exists.
      config: { auth: "admin", problems: [409] },
      schema: { tags, operationId: "createTemplate", summary: "Create a notification template", body: templateCreateSchema, response: { 201: templateSchema } },
    },
    async (req, reply) => reply.status(201).send(await templates().create(req.body)),
  );

  app.get(
    "/templates",
    {
      config: { auth: "admin" },
      schema: { tags, operationId: "listTemplates", summary: "Every notification template", response: { 200: z.object({ templates: z.array(templateSchema) }) } },
    },
    async () => ({ templates: await templates().list() }),
  );

  app.get("/templates/:key", { config: { auth: "admin" }, schema: { tags, operationId: "getTemplate", summary: "One notification template", params, response: { 200: templateSchema } } }, async (req) => {
    const t = await templates().get(req.params.key);
    if (!t) throw notFound("Template");
    return t;
  });

  app.put(
    "/templates/:key",
    {
      config: { auth: "admin" },
      schema: { tags, operationId: "updateTemplate", summary: "Change a notification template (fields left out keep their value)", params, body: templateUpdateSchema, response: { 200: templateSchema } },
    },
    async (req) => templates().update(req.params.key, req.body),
  );

  app.delete("/templates/:key", { config: { auth: "admin" }, schema: { tags, operationId: "deleteTemplate", summary: "Delete a notification template", params, response: { 204: z.null() } } }, async (req, reply) => {
    if (!(await templates().delete(req.params.key))) throw notFound("Template");
    return reply.status(204).send(null);
  });
};
