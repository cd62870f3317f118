/** SHELL: routes for templates (filled in by the owning issue). */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";

export const templateRoutes: FastifyPluginAsyncZod = async () => {};
