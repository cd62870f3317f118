/** /health (process up), /ready (database answers), /metrics (Prometheus). */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { problem, sendProblem } from "../problem.js";

export const operationsRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    "/health",
    {
      schema: { tags: ["operations"], operationId: "getHealth", summary: "Liveness: the process answers", response: { 200: z.object({ status: z.literal("ok") }) } },
      logLevel: "warn",
    },
    async () => ({ status: "ok" as const }),
  );

  app.get(
    "/ready",
    {
      config: { problems: [503] },
      schema: {
        tags: ["operations"],
        operationId: "getReadiness",
        summary: "Readiness: the database answers (503 while it does not)",
        response: { 200: z.object({ status: z.literal("ready"), database: z.literal("ok") }) },
      },
      logLevel: "warn",
    },
    async (req, reply) => {
      try {
        await Promise.race([
          app.services.database.ping(),
          new Promise((_, reject) => setTimeout(() => reject(new Error("database ping timed out")), 2000).unref()),
        ]);
        return { status: "ready" as const, database: "ok" as const };
      } catch (err) {
        // Anyone may call /ready: the database's own words (host, user, schema) go to the log only.
        req.log.warn({ err }, "not ready: database ping failed");
        return sendProblem(reply, problem("HERALD_UNAVAILABLE", "Not ready"));
      }
    },
  );

  app.get("/metrics", { schema: { hide: true }, logLevel: "warn" }, async (_req, reply) => {
    const registry = app.services.metrics;
    return reply.type(registry.contentType).send(await registry.metrics());
  });
};
