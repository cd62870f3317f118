import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestHerald, startTestHerald } from "../support/herald.js";

describe("server process", () => {
  let h: TestHerald;
  beforeAll(async () => {
    h = await startTestHerald();
  });
  afterAll(() => h.stop());

  it("answers /health and /ready", async () => {
    const health = await fetch(`${h.baseUrl}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok" });
    const ready = await fetch(`${h.baseUrl}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: "ready", database: "ok" });
  });

  it("serves Prometheus metrics and the OpenAPI document", async () => {
    const metrics = await fetch(`${h.baseUrl}/metrics`);
    expect(await metrics.text()).toContain("process_cpu_user_seconds_total");
    const doc = (await (await fetch(`${h.baseUrl}/api/openapi.json`)).json()) as { openapi: string };
    expect(doc.openapi).toBe("3.1.0");
  });

  it("answers unknown routes with a problem body", async () => {
    const res = await fetch(`${h.baseUrl}/nope`);
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    expect(await res.json()).toMatchObject({ status: 404, code: "HERALD_NOT_FOUND" });
  });
});
