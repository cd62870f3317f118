/** The web route: index.html at / and /analytics (SPA fallback), cached assets, and a clear 503 before a build. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Fastify from "fastify";
import { afterAll, describe, expect, it } from "vitest";
import { webRoutes } from "../../src/http/routes/web.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function appWith(dist: string) {
  const app = Fastify();
  await app.register(webRoutes, { distDir: dist });
  return app;
}

describe("serving the web UI", () => {
  const dist = mkdtempSync(path.join(tmpdir(), "herald-web-"));
  dirs.push(dist);
  mkdirSync(path.join(dist, "assets"));
  writeFileSync(path.join(dist, "index.html"), "<!doctype html><title>Herald</title>");
  writeFileSync(path.join(dist, "assets", "app-abc123.js"), "console.log(1)");

  it.each(["/", "/analytics", "/analytics/", "/analytics/anything"])("%s answers with index.html, a CSP and no caching", async (url) => {
    const app = await appWith(dist);
    const res = await app.inject({ url });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain("<title>Herald</title>");
    expect(res.headers["content-security-policy"]).toContain("script-src 'self'");
    expect(res.headers["cache-control"]).toBe("no-cache");
    expect(res.headers["referrer-policy"]).toBe("no-referrer");
    await app.close();
  });

  it("serves hashed assets as immutable and 404s unknown files", async () => {
    const app = await appWith(dist);
    const asset = await app.inject({ url: "/assets/app-abc123.js" });
    expect(asset.statusCode).toBe(200);
    expect(asset.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
    expect((await app.inject({ url: "/assets/missing.js" })).statusCode).toBe(404);
    expect((await app.inject({ url: "/../package.json" })).statusCode).toBe(404);
    await app.close();
  });

  it("answers 503 with how to build when web/dist is missing", async () => {
    const app = await appWith(path.join(dist, "nope"));
    const res = await app.inject({ url: "/analytics" });
    expect(res.statusCode).toBe(503);
    expect(res.body).toContain("npm run build");
    await app.close();
  });
});
