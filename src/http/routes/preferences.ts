/** SHELL: routes for preferences (filled in by the owning issue). */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";

export const preferenceRoutes: FastifyPluginAsyncZod = async () => {};
