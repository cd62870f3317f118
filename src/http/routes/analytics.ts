/** SHELL: routes for analytics (filled in by the owning issue). */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";

export const analyticsRoutes: FastifyPluginAsyncZod = async () => {};
