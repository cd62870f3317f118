/** SHELL: routes for digests (filled in by the owning issue). */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";

export const digestRoutes: FastifyPluginAsyncZod = async () => {};
