/**
 * The Fastify application: plugins (CORS, rate limits, route guard, OpenAPI),
 * the error mapping, operations routes and one plugin per domain under /api.
 * A request meets, in Fastify's order of phases: CORS and the rate limiter
 * (onRequest), the guard (preParsing, auth.ts), the body parser, validation,
 * the handler.
 */
import type { IncomingMessage, Server as HttpServer, ServerResponse } from "node:http";
import cors from "@fastify/cors";
import swagger from "@fastify/swagger";
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from "fastify";
import pino from "pino";
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from "fastify-type-provider-zod";
import { absentBodyAsUndefined, guardJsonBodies } from "./json-body.js";
import { problem, errorHandler, sendProblem } from "./problem.js";
import { createLimits } from "../limits/index.js";
import { createCredentials, guardRoutes } from "./auth.js";
import { registerRateLimits } from "./rate-limit.js";
import { openApiOptions } from "./openapi.js";
import { operationsRoutes } from "./routes/operations.js";
import { notificationRoutes } from "./routes/notifications.js";
import { preferenceRoutes } from "./routes/preferences.js";
import { userRoutes } from "./routes/users.js";
import { templateRoutes } from "./routes/templates.js";
import { digestRoutes } from "./routes/digests.js";
import { analyticsRoutes } from "./routes/analytics.js";
import { adminRoutes } from "./routes/admin.js";
import { pushRoutes } from "./routes/push.js";
import { unsubscribeRoutes } from "./routes/unsubscribe.js";
import { webRoutes } from "./routes/web.js";
import type { HttpServices } from "./services.js";

export interface HttpAppOptions {
  /** Body size limit in bytes. */
  bodyLimit?: number;
  /** Serve the built web UI (web/dist) at / and /analytics. */
  serveWeb?: boolean;
  /** The http.Server to answer on: the composition root creates it before the services (the WebSocket server attaches to it too). Without it, Fastify makes its own. */
  server?: HttpServer;
}

/** What a request log line says about the request (Fastify's own serializer logs the whole URL). */
function requestLogFields(req: { method?: string; url?: string; ip?: string }) {
  return { method: req.method, url: String(req.url ?? "").split("?")[0], remoteAddress: req.ip };
}

/**
 * Errors as pino writes them, without `rawPacket`: Node attaches the unparsed request's bytes to a parse
 * error, and Fastify logs it (at trace) as "client error", query string and Authorization header included.
 */
function errorLogFields(err: Error): unknown {
  const fields: unknown = pino.stdSerializers.err(err);
  if (fields === null || typeof fields !== "object" || !("rawPacket" in fields)) return fields;
  const { rawPacket: _raw, ...rest } = fields;
  return rest;
}

/** What a request Fastify refuses before routing is told: its code's meaning, never Fastify's message (it quotes the URL). */
const FRAMEWORK_ERROR_DETAIL: Record<string, string> = {
  FST_ERR_BAD_URL: "The URL is not validly percent-encoded",
  FST_ERR_MAX_PARAM_LENGTH: "A path parameter is too long",
};

/** Fastify's serverFactory for a server that already exists. */
function serveOn(server: HttpServer) {
  return (handler: (req: IncomingMessage, res: ServerResponse) => void) => {
    server.on("request", handler);
    return server;
  };
}

export async function buildHttpApp(services: HttpServices, options: HttpAppOptions = {}): Promise<FastifyInstance> {
  // Given by the composition root (shared with the WebSocket upgrades); an app built alone makes its own.
  const limits =
    services.limits ??
    (await createLimits({
      trustProxy: services.config.trustProxy,
      authFailuresPerMinute: services.config.authFailureRateLimitPerMinute,
      redis: services.redis,
      redisPrefix: services.redisPrefix,
    }));
  const app = Fastify({
    // Request logs carry the path only: a query string may hold a token (?token= of WebSocket clients).
    loggerInstance: services.logger.child({}, { serializers: { req: requestLogFields, err: errorLogFields } }) as FastifyBaseLogger,
    bodyLimit: options.bodyLimit ?? 256 * 1024,
    // X-Forwarded-For only from the proxies TRUST_PROXY names: believed from anyone, it let every client pick its address.
    // The same rule (src/limits/address.ts) gives the address of WebSocket upgrades.
    trustProxy: services.config.trustProxy === false ? false : limits.trust,
    return503OnClosing: true,
    ...(options.server ? { serverFactory: serveOn(options.server) } : {}),
    forceCloseConnections: "idle",
    // User ids may be 255 characters (userIdSchema); Fastify's default stops path parameters at 100.
    routerOptions: { maxParamLength: 512 },
    // Errors raised before routing (malformed %-encoding, an overlong path parameter) get problem bodies too,
    // generic ones: Fastify's messages repeat the whole URL, ?token= included, back to the sender.
    frameworkErrors: (err, _req, reply) =>
      void sendProblem(reply, { ...problem("HERALD_VALIDATION", FRAMEWORK_ERROR_DETAIL[err.code] ?? "Malformed request"), status: err.statusCode ?? 400 }),
  }).withTypeProvider<ZodTypeProvider>();

  app.setValidatorCompiler(absentBodyAsUndefined(validatorCompiler));
  app.setSerializerCompiler(serializerCompiler);
  app.decorate("services", services);
  app.setErrorHandler(errorHandler);
  guardJsonBodies(app);
  app.setNotFoundHandler((req, reply) => sendProblem(reply, problem("HERALD_NOT_FOUND", `No route for ${req.method} ${req.url.split("?")[0]}`)));

  await app.register(cors, {
    origin: services.config.corsOrigins.length > 0 ? [...services.config.corsOrigins] : false,
    credentials: true,
    methods: ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
  });
  if (!services.limits) app.addHook("onClose", () => limits.close());
  const credentials = createCredentials(services.auth);
  // After CORS (a browser can read its 429), before the routes; the guard's preParsing hook comes after it.
  registerRateLimits(app as unknown as FastifyInstance, {
    counter: limits.counter,
    perMinute: services.config.rateLimitPerMinute,
    adminPerMinute: services.config.adminRateLimitPerMinute,
    authFailures: limits.authFailures,
    credentials,
  });
  guardRoutes(app as unknown as FastifyInstance, credentials);
  await app.register(swagger, openApiOptions(services.config));

  await app.register(operationsRoutes);
  await app.register(notificationRoutes, { prefix: "/api" });
  await app.register(preferenceRoutes, { prefix: "/api" });
  await app.register(userRoutes, { prefix: "/api" });
  await app.register(templateRoutes, { prefix: "/api" });
  await app.register(digestRoutes, { prefix: "/api" });
  await app.register(analyticsRoutes, { prefix: "/api" });
  await app.register(adminRoutes, { prefix: "/api" });
  await app.register(pushRoutes, { prefix: "/api" });
  await app.register(unsubscribeRoutes, { prefix: "/api" });
  if (options.serveWeb !== false) await app.register(webRoutes);

  app.get("/api/openapi.json", { config: { auth: "none" }, schema: { hide: true } }, async () => app.swagger());
  app.get("/docs", { schema: { hide: true } }, async (_req, reply) => reply.redirect("/api/openapi.json"));
  return app as unknown as FastifyInstance;
}
