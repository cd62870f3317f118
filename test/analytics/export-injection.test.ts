/** Issue #15.9: a CSV export never hands a spreadsheet a formula (OWASP CSV injection). */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { csvField } from "../../src/analytics/index.js";
import { type AnalyticsHarness, analyticsHarness, parseCsv, uuid } from "./fixtures.js";

const HOSTILE = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"];

describe("CSV injection", () => {
  let h: AnalyticsHarness;
  beforeAll(async () => {
    h = await analyticsHarness("2024-05-01T00:00:00.000Z");
    for (const [i, userId] of HOSTILE.entries()) {
      await h.notification({ id: uuid(i + 1), userId, type: "new_message" });
      h.event(uuid(i + 1), userId, "opened", "2024-04-30T12:00:00Z", { note: "=1+2" });
    }
    await h.ingest.flush();
  });
  afterAll(async () => h.close());

  it("cells beginning with = + - @, tab or CR are prefixed with a single quote", () => {
    for (const s of HOSTILE) expect(csvField(s).replace(/^"/, "")).toMatch(/^'/);
    expect(csvField("=A1")).toBe("'=A1");
    expect(csvField('=HYPERLINK("u")')).toBe(`"'=HYPERLINK(""u"")"`);
    // Ordinary text and numbers are untouched, negative numbers included (they are data, not formulas).
    expect(csvField("alice")).toBe("alice");
    expect(csvField(-3)).toBe("-3");
    expect(csvField(12.5)).toBe("12.5");
  });

  it("both exports neutralise user ids and metadata; JSON keeps the exact values", async () => {
    let csv = "";
    for await (const c of h.service.exportData({ format: "csv", kind: "events" })) csv += c;
    const events = parseCsv(csv);
    expect(events.map((r) => r.userId).sort()).toEqual(HOSTILE.map((s) => `'${s}`).sort());
    for (const r of events) expect(r.metadata).toBe('{"note": "=1+2"}'); // starts with "{": left as it is
    let aggregates = "";
    for await (const c of h.service.exportData({ format: "csv", kind: "aggregates" })) aggregates += c;
    expect(parseCsv(aggregates).map((r) => r.userId).sort()).toEqual(HOSTILE.map((s) => `'${s}`).sort());
    let json = "";
    for await (const c of h.service.exportData({ format: "json", kind: "events" })) json += c;
    expect((JSON.parse(json) as { userId: string }[]).map((r) => r.userId).sort()).toEqual([...HOSTILE].sort());
  });
});
