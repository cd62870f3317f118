/** SHELL: routes for admin (filled in by the owning issue). */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";

export const adminRoutes: FastifyPluginAsyncZod = async () => {};
