/**
 * What the README's "Security and limits" says of the web UI and the rate
 * limits: the two pages (/ and /analytics) are not limited; every other path
 * the UI's static files answer (its assets, or a miss) counts against the
 * address's budget like an unmatched /api request, so it cannot be used to
 * step around the limit (1dfe6f8).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestHerald, startTestHerald } from "../support/herald.js";

const LIMIT = 4;
let h: TestHerald;
beforeAll(async () => {
  h = await startTestHerald({ serveWeb: true, env: { HERALD_RATE_LIMIT_PER_MINUTE: String(LIMIT) } });
});
afterAll(async () => h?.stop());

describe("the web UI and the rate limits", () => {
  it("the pages carry no rate-limit headers and are never refused", async () => {
    for (let i = 0; i < LIMIT + 2; i++) {
      for (const page of ["/", "/analytics"]) {
        const res = await fetch(`${h.baseUrl}${page}`);
        await res.arrayBuffer();
        expect(res.status, page).not.toBe(429);
        expect(res.headers.get("ratelimit-limit"), page).toBeNull();
      }
    }
  });

  it("other paths the static files answer count against the address's budget, shared with unmatched /api requests", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < LIMIT; i++) {
      const res = await fetch(`${h.baseUrl}/assets/not-a-file-${i}.js`);
      await res.arrayBuffer();
      expect(res.headers.get("ratelimit-limit")).toBe(String(LIMIT));
      statuses.push(res.status);
    }
    expect(statuses).not.toContain(429);
    // The same address's budget: an unmatched /api path is now refused too.
    const api = await fetch(`${h.baseUrl}/api/no-such-route`);
    await api.arrayBuffer();
    expect(api.status).toBe(429);
    expect(Number(api.headers.get("retry-after"))).toBeGreaterThan(0);
  });
});
