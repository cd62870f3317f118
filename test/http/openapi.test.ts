/**
 * The OpenAPI document Herald serves (GET /api/openapi.json), read as a client
 * generator reads it (issue 19.9): every operation has a unique camelCase
 * operationId and a summary (a new route without them fails here), its
 * security says what the route guard does, its 4xx answers are problem+json
 * with the shared Problem schema, the server is APP_URL, and openapi-typescript
 * turns it into types a small client compiles against.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import openapiTS, { astToString } from "openapi-typescript";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCatalogue } from "../../src/errors/index.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";

interface Operation {
  operationId?: string;
  summary?: string;
  security?: Record<string, string[]>[];
  requestBody?: { required?: boolean };
  parameters?: { name: string; in: string; schema?: { default?: unknown }; description?: string }[];
  responses: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }>;
}
interface Document {
  servers?: { url: string }[];
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, { properties: Record<string, { enum?: string[] }> }>; securitySchemes: Record<string, unknown> };
}

const APP_URL = "https://notify.acme.test";
let h: TestHerald;
let doc: Document;
let operations: { method: string; path: string; op: Operation }[];

beforeAll(async () => {
  h = await startTestHerald({ env: { APP_URL } });
  const res = await fetch(`${h.baseUrl}/api/openapi.json`);
  expect(res.status).toBe(200);
  doc = (await res.json()) as Document;
  operations = Object.entries(doc.paths).flatMap(([p, methods]) => Object.entries(methods).map(([method, op]) => ({ method: method.toUpperCase(), path: p, op })));
});
afterAll(() => h?.stop());

const name = (o: { method: string; path: string }) => `${o.method} ${o.path}`;

describe("the served OpenAPI document", () => {
  it("gives every operation a unique camelCase operationId and a summary", () => {
    expect(operations.length).toBeGreaterThan(40);
    const withoutId = operations.filter((o) => !/^[a-z][a-zA-Z0-9]*$/.test(o.op.operationId ?? "")).map(name);
    const withoutSummary = operations.filter((o) => !o.op.summary?.trim()).map(name);
    expect(withoutId, "operations without a camelCase operationId").toEqual([]);
    expect(withoutSummary, "operations without a summary").toEqual([]);
    const ids = operations.map((o) => o.op.operationId);
    expect(ids.filter((id, i) => ids.indexOf(id) !== i), "operationIds used twice").toEqual([]);
  });

  it("keeps the operationIds clients are generated from", () => {
    const ids = new Map(operations.map((o) => [o.op.operationId, name(o)]));
    expect(ids.get("createNotification")).toBe("POST /api/notifications");
    expect(ids.get("listNotifications")).toBe("GET /api/notifications");
    expect(ids.get("markAllNotificationsRead")).toBe("POST /api/notifications/read-all");
    expect(ids.get("archiveAllNotifications")).toBe("POST /api/notifications/archive-all");
    expect(ids.get("sendTestDigest")).toBe("POST /api/digests/test");
  });

  it("names APP_URL as its server", () => {
    expect(doc.servers).toEqual([expect.objectContaining({ url: APP_URL })]);
  });

  it("documents every 4xx answer as application/problem+json with the shared Problem schema, whose codes are the catalogue's", () => {
    const problem = doc.components.schemas.Problem!;
    expect(problem.properties.code!.enum?.sort()).toEqual(Object.keys(errorCatalogue).sort());
    for (const o of operations.filter((x) => x.path.startsWith("/api/"))) {
      const fourXx = Object.keys(o.op.responses).filter((s) => s.startsWith("4"));
      expect(fourXx, name(o)).toContain("429");
      for (const status of fourXx) {
        expect(Object.keys(o.op.responses[status]!.content ?? {}), `${name(o)} ${status}`).toEqual(["application/problem+json"]);
        expect(o.op.responses[status]!.content!["application/problem+json"]!.schema).toEqual({ $ref: "#/components/schemas/Problem" });
      }
    }
  });

  it("derives the answers from the route: 400 for input, 401/403 from the guard, 404 for an id, 409 where the code throws it", () => {
    const statuses = (id: string) => Object.keys(operations.find((o) => o.op.operationId === id)!.op.responses).filter((s) => s >= "400");
    expect(statuses("createNotification")).toEqual(["400", "401", "403", "404", "409", "413", "429"]);
    expect(statuses("getNotification")).toEqual(["400", "401", "403", "404", "429"]);
    expect(statuses("markAllNotificationsRead")).toEqual(["401", "403", "429"]);
    expect(statuses("trackEvent")).toEqual(["400", "401", "404", "413", "429"]); // provider or admin: no 403
    expect(statuses("getVapidPublicKey")).toEqual(["429"]);
    expect(statuses("getReadiness")).toEqual(["503"]);
  });

  it("documents the defaults of the optional inputs: top's minDelivered is 1, the test digest's body may be left out", () => {
    const top = operations.find((o) => o.op.operationId === "listTopNotifications")!.op;
    const minDelivered = top.parameters!.find((p) => p.name === "minDelivered")!;
    expect(minDelivered.schema?.default).toBe(1);
    expect(minDelivered.description).toBeTruthy();
    expect(operations.find((o) => o.op.operationId === "sendTestDigest")!.op.requestBody?.required).toBe(false);
    expect(operations.find((o) => o.op.operationId === "createNotification")!.op.requestBody?.required).toBe(true);
  });
});

describe("security, as the route guard enforces it", () => {
  // Path parameters filled with values every route's schema accepts; the guard answers before validation anyway.
  const url = (p: string) => `${h.baseUrl}${p.replace(/\{id\}/g, "00000000-0000-4000-8000-000000000000").replace(/\{[^}]+\}/g, "k")}`;
  const schemes = (op: Operation) => new Set((op.security ?? []).flatMap((s) => Object.keys(s)));

  it("answers 401 without a credential exactly where the document asks for one", async () => {
    const wrong: string[] = [];
    for (const o of operations.filter((x) => x.path.startsWith("/api/"))) {
      const res = await fetch(url(o.path), { method: o.method });
      await res.body?.cancel();
      if ((res.status === 401) !== schemes(o.op).size > 0) wrong.push(`${name(o)}: ${res.status}, security ${JSON.stringify(o.op.security)}`);
    }
    expect(wrong).toEqual([]);
  });

  it("answers 403 to a provider token where only an admin credential is documented, and to an admin where only a provider token is", async () => {
    const provider = await h.tokenFor("openapi-provider");
    const wrong: string[] = [];
    for (const o of operations.filter((x) => x.path.startsWith("/api/") && schemes(x.op).size > 0)) {
      const refused = [
        ...(schemes(o.op).has("providerToken") ? [] : [provider]),
        ...(schemes(o.op).has("adminToken") ? [] : [h.adminToken]),
      ];
      for (const token of refused) {
        const res = await fetch(url(o.path), { method: o.method, headers: { authorization: `Bearer ${token}` } });
        await res.body?.cancel();
        if (res.status !== 403) wrong.push(`${name(o)} with ${token === provider ? "a provider token" : "an admin token"}: ${res.status}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(["adminToken", "apiKey", "providerToken"]);
  });
});

describe("a client generated with openapi-typescript", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), "herald-openapi-client-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** The compiler's diagnostics for `file` (strict), as text. */
  function typecheck(file: string): string[] {
    const program = ts.createProgram([file], {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      lib: ["lib.es2022.d.ts", "lib.dom.d.ts"],
      types: [],
      skipLibCheck: true,
    });
    return ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"));
  }

  it("compiles against the generated types, which refuse a wrong body, a wrong problem code and an unknown operation", async () => {
    const types = astToString(await openapiTS(doc as unknown as Parameters<typeof openapiTS>[0]));
    for (const o of operations) expect(types, o.op.operationId).toContain(`${o.op.operationId}: {`);
    writeFileSync(path.join(dir, "api.ts"), types);
    writeFileSync(path.join(dir, "client.ts"), CLIENT);
    expect(typecheck(path.join(dir, "client.ts"))).toEqual([]);

    // The check can fail: a client that reads a response the operation does not have.
    writeFileSync(path.join(dir, "broken.ts"), `${CLIENT}\ntype Missing = operations["listNotifications"]["responses"][201];\nexport type { Missing };\n`);
    expect(typecheck(path.join(dir, "broken.ts")).join("\n")).toMatch(/201/);
  }, 60_000);
});

/** A tiny typed client over the generated `paths` and `operations`; the @ts-expect-error lines must stay errors. */
const CLIENT = `import type { components, operations, paths } from "./api";

type Problem = components["schemas"]["Problem"];
type CreateBody = NonNullable<paths["/api/notifications"]["post"]["requestBody"]>["content"]["application/json"];
type Created = paths["/api/notifications"]["post"]["responses"][201]["content"]["application/json"];
type ListQuery = NonNullable<operations["listNotifications"]["parameters"]["query"]>;
type Listed = operations["listNotifications"]["responses"][200]["content"]["application/json"];
type TestDigestBody = NonNullable<operations["sendTestDigest"]["requestBody"]>["content"]["application/json"];
type Digest = operations["sendTestDigest"]["responses"][200]["content"]["application/json"];

export class HeraldApi {
  constructor(private readonly baseUrl: string, private readonly token: string) {}

  private async send<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { authorization: "Bearer " + this.token };
    if (body !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(this.baseUrl + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (!res.ok) {
      const problem = (await res.json()) as Problem;
      throw new Error(problem.code + ": " + problem.detail);
    }
    return (await res.json()) as T;
  }

  createNotification(body: CreateBody): Promise<Created> {
    return this.send("POST", "/api/notifications", body);
  }

  listNotifications(query: ListQuery = {}): Promise<Listed> {
    const search = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)]));
    return this.send("GET", "/api/notifications?" + search.toString());
  }

  sendTestDigest(body?: TestDigestBody): Promise<Digest> {
    return this.send("POST", "/api/digests/test", body);
  }
}

export async function example(api: HeraldApi): Promise<string> {
  const created = await api.createNotification({ userId: "u1", type: "system", title: "Hi", message: "there" });
  const listed = await api.listNotifications({ read: "false", limit: 10 });
  const digest = await api.sendTestDigest();
  const conflict: Problem["code"] = "HERALD_CONFLICT";
  // @ts-expect-error a problem code outside the catalogue
  const teapot: Problem["code"] = "HERALD_TEAPOT";
  // @ts-expect-error title is required
  await api.createNotification({ userId: "u1", type: "system", message: "there" });
  // @ts-expect-error no such operation
  type Nothing = operations["sendFax"];
  const nothing: Nothing | undefined = undefined;
  return [created.notification?.id, listed.unreadCount, digest.frequency, conflict, teapot, nothing].join(" ");
}
`;
