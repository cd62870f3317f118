/** /health (process up and able to recover), /ready (database answers), /metrics (Prometheus). */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { problem, sendProblem } from "../problem.js";

export const operationsRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    "/health",
    {
      config: { problems: [503] },
      schema: {
        tags: ["operations"],
        operationId: "getHealth",
        summary: "Liveness: the process answers (503 once its embedded database is gone for good: restart it)",
        response: { 200: z.object({ status: z.literal("ok") }) },
      },
      logLevel: "warn",
    },
    async (req, reply) => {
      // A database that is down may come back (/ready says so); a dead PGlite worker never does.
      const lost = app.services.database.lost?.();
      if (!lost) return { status: "ok" as const };
      // The runtime logged the loss as an error once; each probe after it is a warning.
      req.log.warn({ err: lost }, "not healthy: the embedded database is gone");
      return sendProblem(reply, problem("HERALD_UNAVAILABLE", "The embedded database is gone: restart Herald"));
    },
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
