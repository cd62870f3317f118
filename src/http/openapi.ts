/**
 * The OpenAPI document (GET /api/openapi.json), described in one place for
 * client generators: each route gives its `operationId`, `summary` and
 * schemas; what follows from its access rule and its schemas is derived here,
 * in the swagger `transform`, so no route repeats it:
 *
 * - `security`, from `config.auth` (auth.ts): a provider token, an admin
 *   credential (admin token or API key), either, or none;
 * - its problem answers (application/problem+json, the shared `Problem`
 *   schema): 401 for a guarded route, 403 where one kind of credential is
 *   refused, 400 for a route with a body, query or path parameters, 404 for a
 *   route with path parameters, 413 for a body, 429 for every /api route (the
 *   limiter of rate-limit.ts), and what the route's code throws beyond that
 *   (`config.problems`: 404, 409, 422, 503).
 *
 * test/http/openapi.test.ts fails when an operation lacks an operationId or a
 * summary; `npm run lint:openapi` lints the document with Redocly.
 */
import type { FastifyDynamicSwaggerOptions } from "@fastify/swagger";
import type { FastifySchema, RouteOptions } from "fastify";
import { jsonSchemaTransform } from "fastify-type-provider-zod";
import { ZodType } from "zod";
import type { Config } from "../config/index.js";
import { errorCatalogue } from "../errors/index.js";
import type { RouteAuth } from "./auth.js";

/** The document as @fastify/swagger takes it (OpenAPI 3.1). */
type OpenApiDocument = Extract<NonNullable<FastifyDynamicSwaggerOptions["openapi"]>, { webhooks?: unknown }>;

/** Problem answers a route's code may give beyond the ones derived from its access rule and schemas. */
export type ThrownProblemStatus = 404 | 409 | 422 | 503;

declare module "fastify" {
  interface FastifyContextConfig {
    /** Problem statuses the handler (or the service behind it) answers, for the OpenAPI document. */
    problems?: readonly ThrownProblemStatus[];
  }
}

type Components = NonNullable<OpenApiDocument["components"]>;
type SchemaObject = NonNullable<Components["schemas"]>[string];
type SecuritySchemeObject = NonNullable<Components["securitySchemes"]>[string];

const PROBLEM_REF = "#/components/schemas/Problem";

/** Why each problem status is answered, as the document says it. */
const PROBLEM_DESCRIPTIONS: Record<number, string> = {
  400: "Invalid request: the body, query or path parameters fail validation (`errors` names each field)",
  401: "No credential, or one that is invalid or expired",
  403: "A valid credential of the wrong kind for this route",
  404: "The resource does not exist (or belongs to another user)",
  409: "Conflicts with what is stored",
  413: "The request body is too large",
  422: "Understood, but it cannot be carried out",
  429: "Rate limit exceeded; retry after `Retry-After` seconds",
  503: "The database is unavailable; retry shortly (from /health: the embedded database is gone for good, restart the process)",
};

/** RFC 9457 problem details, as src/errors builds them. */
const problemSchema = {
  type: "object",
  description: "RFC 9457 problem details. Match on `code`, which is stable; `detail` is for people.",
  required: ["type", "title", "status", "detail", "code"],
  properties: {
    type: { type: "string", description: "A URI naming the kind of problem", examples: ["https://herald.dev/problems/herald-validation"] },
    title: { type: "string", description: "Short summary of the kind of problem" },
    status: { type: "integer", description: "The HTTP status" },
    detail: { type: "string", description: "What went wrong with this request" },
    code: { type: "string", enum: Object.keys(errorCatalogue), description: "Stable machine-readable code" },
    instance: { type: "string" },
    errors: {
      type: "array",
      description: "The offending fields (validation problems)",
      items: {
        type: "object",
        required: ["field", "message"],
        properties: { field: { type: "string", description: "Dotted path, e.g. body.title" }, message: { type: "string" } },
      },
    },
  },
} satisfies SchemaObject;

const securitySchemes = {
  providerToken: {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
    description:
      "A provider token: a JWT naming the user who receives notifications in `sub`, with an `exp`, signed HS256 with JWT_SECRET " +
      "(`herald token <user>` mints one) or RS256/ES256 by the identity provider at JWKS_URL.",
  },
  adminToken: {
    type: "http",
    scheme: "bearer",
    description: "An admin credential: an admin JWT (`role: admin`, or JWT_ADMIN_CLAIM on a JWKS token) or one of HERALD_API_KEYS.",
  },
  apiKey: { type: "apiKey", in: "header", name: "x-api-key", description: "One of HERALD_API_KEYS." },
} satisfies Record<string, SecuritySchemeObject>;

/** Each access rule's security requirement (alternatives: any one of them). */
const SECURITY: Record<RouteAuth, { [scheme: string]: string[] }[]> = {
  provider: [{ providerToken: [] }],
  admin: [{ adminToken: [] }, { apiKey: [] }],
  "provider-or-admin": [{ providerToken: [] }, { adminToken: [] }, { apiKey: [] }],
  none: [],
};

/** The problem statuses of a route, in order: derived from its access rule and schemas, plus what it throws. */
export function problemStatuses(route: Pick<RouteOptions, "url" | "config" | "schema">): number[] {
  const access = route.config?.auth ?? "none";
  const schema: FastifySchema = route.schema ?? {};
  const statuses = new Set<number>(route.config?.problems ?? []);
  if (schema.body !== undefined || schema.querystring !== undefined || schema.params !== undefined) statuses.add(400);
  if (access !== "none") statuses.add(401);
  if (access === "provider" || access === "admin") statuses.add(403);
  if (schema.params !== undefined) statuses.add(404);
  if (schema.body !== undefined) statuses.add(413);
  if (route.url.startsWith("/api/") && route.config?.rateLimit !== false) statuses.add(429);
  return [...statuses].sort((a, b) => a - b);
}

function problemResponse(status: number) {
  return {
    description: PROBLEM_DESCRIPTIONS[status] ?? "A problem",
    ...(status === 429 || status === 503
      ? { headers: { "retry-after": { type: "integer", description: "Seconds to wait before retrying" } } }
      : {}),
    content: { "application/problem+json": { schema: { $ref: PROBLEM_REF } } },
  };
}

/**
 * Marks an operation whose body schema takes an absent body (it has a default): @fastify/swagger writes every
 * requestBody as required, and `markOptionalBodies` below turns the marked ones to optional.
 */
const OPTIONAL_BODY = "x-herald-optional-body";

/** The swagger transform: zod schemas to JSON Schema, then the derived security and problem answers. */
export const describeOperation: NonNullable<FastifyDynamicSwaggerOptions["transform"]> = (input) => {
  const { schema, url } = jsonSchemaTransform(input);
  if (schema.hide) return { schema, url };
  const route = input.route;
  const response: Record<string, unknown> = { ...(schema.response as Record<string, unknown> | undefined) };
  for (const status of problemStatuses({ url: route.url, config: route.config, schema: input.schema })) response[status] ??= problemResponse(status);
  const body = input.schema?.body;
  const optionalBody = body instanceof ZodType && body.safeParse(undefined).success ? { [OPTIONAL_BODY]: true } : {};
  return { url, schema: { ...schema, ...optionalBody, security: SECURITY[route.config?.auth ?? "none"], response } };
};

/** The swagger transformObject: the marked request bodies become optional (json-body.ts validates an absent body as undefined). */
export const markOptionalBodies: NonNullable<FastifyDynamicSwaggerOptions["transformObject"]> = (document) => {
  if (!("openapiObject" in document)) return document.swaggerObject;
  const { openapiObject } = document;
  for (const path of Object.values(openapiObject.paths ?? {})) {
    for (const operation of Object.values(path ?? {}) as { [OPTIONAL_BODY]?: true; requestBody?: { required?: boolean } }[]) {
      if (typeof operation !== "object" || operation === null || !(OPTIONAL_BODY in operation)) continue;
      delete operation[OPTIONAL_BODY];
      if (operation.requestBody) operation.requestBody.required = false;
    }
  }
  return openapiObject;
};

/** @fastify/swagger's options: the document's frame (servers from APP_URL) and the transform above. */
export function openApiOptions(config: Pick<Config, "appUrl">): FastifyDynamicSwaggerOptions {
  return {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "Herald",
        version: "0.1.0",
        description:
          "Self-hosted notification backend. A provider is the person who receives notifications; the backend of your app " +
          "creates them with an admin credential. Every error is an RFC 9457 problem body (application/problem+json).",
        license: { name: "MIT", identifier: "MIT" },
      },
      servers: [{ url: config.appUrl, description: "This Herald (APP_URL)" }],
      components: { securitySchemes, schemas: { Problem: problemSchema } },
    },
    // Paths are documented as served: a path in APP_URL (a reverse proxy's prefix) is not taken off them.
    stripBasePath: false,
    transform: describeOperation,
    transformObject: markOptionalBodies,
  };
}
