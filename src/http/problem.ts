/** RFC 9457 problem bodies for every error the HTTP layer answers. */
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";
import { HeraldError, type Problem, isDatabaseUnavailable, isUnstorableText, problem } from "../errors/index.js";

// The body format lives with the catalogue (src/errors) so the WebSocket upgrade's refusals share it.
export { type Problem, problem } from "../errors/index.js";

export function sendProblem(reply: FastifyReply, p: Problem): FastifyReply {
  return reply.status(p.status).type("application/problem+json").send(p);
}

export function errorHandler(err: FastifyError, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (err instanceof HeraldError) return sendProblem(reply, problem(err.code, err.message, err.fields));
  if (hasZodFastifySchemaValidationErrors(err)) {
    const fields = err.validation.map((v) => ({
      field: [err.validationContext, ...String(v.instancePath ?? "").split("/").filter(Boolean)].join("."),
      message: v.message ?? "invalid",
    }));
    return sendProblem(reply, problem("HERALD_VALIDATION", `Invalid ${err.validationContext ?? "request"}`, fields));
  }
  if (err.statusCode === 429) {
    return sendProblem(reply, problem("HERALD_RATE_LIMITED", err.message || "Rate limit exceeded"));
  }
  if (err.code === "FST_ERR_CTP_BODY_TOO_LARGE" || err.statusCode === 413) {
    return sendProblem(reply, problem("HERALD_PAYLOAD_TOO_LARGE", "Request body is too large"));
  }
  if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
    // Malformed JSON, bad content type, empty body and the like.
    return sendProblem(reply, { ...problem("HERALD_VALIDATION", err.message), status: err.statusCode });
  }
  if (isUnstorableText(err)) {
    return sendProblem(reply, problem("HERALD_VALIDATION", "The request contains text that cannot be stored (for example a NUL character)"));
  }
  if (isDatabaseUnavailable(err)) {
    req.log.warn({ err }, "database unavailable");
    return sendProblem(reply, problem("HERALD_UNAVAILABLE", "The database is unavailable; retry shortly")).header("retry-after", "2");
  }
  req.log.error({ err }, "unhandled error");
  return sendProblem(reply, problem("HERALD_INTERNAL", "Internal error"));
}
