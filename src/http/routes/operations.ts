/** /health (process up), /ready (database answers), /metrics (Prometheus). */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { problem, sendProblem } from "../problem.js";

export const operationsRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    "/health",
    { schema: { tags: ["operations"], response: { 200: z.object({ status: z.literal("ok") }) } }, logLevel: "warn" },
    async () => ({ status: "ok" as const }),
  );

  app.get("/ready", { schema: { tags: ["operations"] }, logLevel: "warn" }, async (req, reply) => {
    try {
      await Promise.race([
        app.services.database.ping(),
        new Promise((_, reject) => setTimeout(() => reject(new Error("database ping timed out")), 2000).unref()),
      ]);
      return { status: "ready", database: "ok" };
    } catch (err) {
      // Anyone may call /ready: the database's own words (host, user, schema) go to the log only.
      req.log.warn({ err }, "not ready: database ping failed");
      return sendProblem(reply, problem("HERALD_UNAVAILABLE", "Not ready"));
    }
  });

  app.get("/metrics", { schema: { hide: true }, logLevel: "warn" }, async (_req, reply) => {
    const registry = app.services.metrics;
    return reply.type(registry.contentType).send(await registry.metrics());
  });
};
