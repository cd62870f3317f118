/** SHELL (owned by the web work, issue 7): serves web/dist at / and /analytics. */
import type { FastifyPluginAsync } from "fastify";

export const webRoutes: FastifyPluginAsync = async () => {};
