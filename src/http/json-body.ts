/**
 * The one JSON body parser of the HTTP layer: Fastify's own (prototype
 * poisoning refused) behind two checks every route gets, so no route has to
 * remember them. Nesting is bounded before parsing (10,000 levels of
 * `{"a":` once answered 500 with a stack); text PostgreSQL cannot store is
 * refused after: NUL in text or jsonb is an error, and one NUL in analytics
 * metadata once blocked every analytics write; a lone UTF-16 surrogate is an
 * error in jsonb and silently becomes U+FFFD in text. Bytes that are not
 * UTF-8, or a charset other than UTF-8, would also become U+FFFD: refused.
 *
 * An absent body is validated as absent (undefined), whether the request has
 * no body or an empty one with a JSON content type: a body schema with a
 * default (POST /api/digests/test) then takes it, and a route that needs a
 * body says "expected object" (both were a 400 before, the first one with
 * Fastify's "Body cannot be empty").
 */
import { isUtf8 } from "node:buffer";
import type { FastifyInstance, FastifyRequest, FastifySchemaCompiler } from "fastify";
import { isStorableText } from "../db/index.js";
import { type FieldIssue, validationError } from "../errors/index.js";

/** Deepest array/object nesting a body may have (the body itself is level 1). */
export const MAX_JSON_DEPTH = 32;

/** True when `text` opens more than `max` arrays/objects at once (brackets inside strings do not count). */
export function nestedDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

/** The first string or key PostgreSQL cannot store, by its dotted path ("body.metadata.a"); depth already bounded. */
export function findUnstorableText(value: unknown, path = "body"): FieldIssue | undefined {
  if (typeof value === "string") return isStorableText(value) ? undefined : { field: path, message: "contains a NUL character or an unpaired UTF-16 surrogate" };
  if (value === null || typeof value !== "object") return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const issue = findUnstorableText(value[i], `${path}.${i}`);
      if (issue) return issue;
    }
    return undefined;
  }
  for (const [key, v] of Object.entries(value)) {
    if (!isStorableText(key)) return { field: path, message: "has a key with a NUL character or an unpaired UTF-16 surrogate" };
    const issue = findUnstorableText(v, `${path}.${key}`);
    if (issue) return issue;
  }
  return undefined;
}

/** The charset parameter of a Content-Type, lower-cased and unquoted; undefined when absent. */
function charsetOf(contentType: string | undefined): string | undefined {
  const m = /;\s*charset\s*=\s*("?)([^";\s]*)\1/i.exec(contentType ?? "");
  return m ? m[2]!.toLowerCase() : undefined;
}

/** An error Fastify's error handler answers with its status (a problem body, see problem.ts). */
function withStatus(message: string, statusCode: number): Error {
  return Object.assign(new Error(message), { statusCode });
}

/** Replaces the application/json parser of `app` (call before routes are registered). */
export function guardJsonBodies(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser("error", "error");
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, (req: FastifyRequest, body: string | Buffer, done) => {
    // JSON is UTF-8 (RFC 8259 8.1). Read any other way, a declared Latin-1 or UTF-16 body or stray bytes
    // were stored with U+FFFD in place of what the caller sent, answered 201.
    const charset = charsetOf(req.headers["content-type"]);
    if (charset !== undefined && charset !== "utf-8" && charset !== "utf8") {
      done(withStatus(`JSON bodies are read as UTF-8; charset=${charset.slice(0, 40)} is not supported`, 415), undefined);
      return;
    }
    const bytes = typeof body === "string" ? Buffer.from(body, "utf8") : body;
    if (!isUtf8(bytes)) {
      done(validationError("The body is not valid UTF-8", [{ field: "body", message: "is not valid UTF-8" }]), undefined);
      return;
    }
    const text = bytes.toString("utf8");
    if (text.trim() === "") {
      done(null, undefined);
      return;
    }
    if (nestedDeeperThan(text, MAX_JSON_DEPTH)) {
      done(validationError(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`, [{ field: "body", message: `nested deeper than ${MAX_JSON_DEPTH} levels` }]), undefined);
      return;
    }
    parse(req, text, (err, value) => {
      if (err) return done(err, undefined);
      const issue = findUnstorableText(value);
      if (issue) return done(validationError("The body contains text that cannot be stored", [issue]), undefined);
      done(null, value);
    });
  });
}

/**
 * `compile` with an absent body validated as undefined: Fastify hands a body validator null when the request
 * has none, which no default of a zod schema takes. (A literal `null` body reads as absent too.)
 */
export function absentBodyAsUndefined<S>(compile: FastifySchemaCompiler<S>): FastifySchemaCompiler<S> {
  return (route) => {
    const validate = compile(route);
    return route.httpPart === "body" ? (data) => validate(data === null ? undefined : data) : validate;
  };
}
