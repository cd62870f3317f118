/**
 * Which limit applies is decided from the matched route, never from the raw
 * URL: a percent-encoded path (`/%61pi/...`) and an absolute-form request line
 * (`GET http://host/api/...`) reach the same route and the same limit. Sent
 * over a raw TCP socket, since fetch normalises both away.
 */
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestHerald, startTestHerald } from "../support/herald.js";

let h: TestHerald;
beforeAll(async () => {
  h = await startTestHerald({ env: { HERALD_RATE_LIMIT_PER_MINUTE: "3" } });
});
afterAll(() => h.stop());

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
}

/** One request per connection (Connection: close), the request line exactly as given. */
function raw(requestLine: string, headers: Record<string, string>, body = ""): Promise<RawAnswer> {
  const { port, hostname } = new URL(h.baseUrl);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    socket.on("data", (c) => chunks.push(c));
    socket.on("error", reject);
    socket.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");

      const [head = ""] = text.split("\r\n\r\n");
      const [statusLine = "", ...lines] = head.split("\r\n");
      const parsed: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(":");
        parsed[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      resolve({ status: Number(statusLine.split(" ")[1]), headers: parsed });
    });
    const all = { host: `${hostname}:${port}`, connection: "close", ...(body ? { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) } : {}), ...headers };
    // write, not end: a half-closed socket is dropped by the server before an async answer is ready
    socket.write(`${requestLine}\r\n${Object.entries(all).map(([k, v]) => `${k}: ${v}`).join("\r\n")}\r\n\r\n${body}`);
  });
}

describe("rate limits follow the matched route", () => {
  it("an absolute-form request line is limited like its path", async () => {
    const token = await h.tokenFor("raw-absolute");
    const answers: RawAnswer[] = [];
    for (let i = 0; i < 4; i++) answers.push(await raw(`GET ${h.baseUrl}/api/notifications HTTP/1.1`, { authorization: `Bearer ${token}` }));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 429]);
    for (const a of answers) expect(a.headers["ratelimit-limit"]).toBe("3");
    expect(Number(answers[3]!.headers["retry-after"])).toBeGreaterThan(0);
  });

  it("a percent-encoded path (/%61pi/digests/test) gets the route's own limit of 5", async () => {
    const token = await h.tokenFor("raw-encoded");
    const user = await h.herald.app.inject({ method: "PUT", url: "/api/users/raw-encoded", headers: { "x-api-key": "test-api-key" }, payload: { email: "raw@example.com", name: "Raw" } });
    expect(user.statusCode).toBe(200);
    const statuses: number[] = [];
    let last: RawAnswer | undefined;
    for (let i = 0; i < 6; i++) {
      last = await raw("POST /%61pi/digests/test HTTP/1.1", { authorization: `Bearer ${token}` }, JSON.stringify({ frequency: "daily" }));
      statuses.push(last.status);
    }
    expect(statuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200]); // routed: five test digests sent
    expect(statuses[5]).toBe(429);
    expect(last!.headers["ratelimit-limit"]).toBe("5");
    expect(last!.headers["ratelimit-remaining"]).toBe("0");
  });
});
