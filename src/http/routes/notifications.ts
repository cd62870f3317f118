/** SHELL: routes for notifications (filled in by the owning issue). */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";

export const notificationRoutes: FastifyPluginAsyncZod = async () => {};
