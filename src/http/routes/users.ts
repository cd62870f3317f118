/** SHELL: routes for users (filled in by the owning issue). */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";

export const userRoutes: FastifyPluginAsyncZod = async () => {};
