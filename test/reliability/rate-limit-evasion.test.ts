/**
 * The limiter against evasions, on a real process over real sockets: every
 * spelling of a limited route (percent-encoded, absolute-form, HEAD, trailing
 * slash, ;params, dot segments), forged forwarding headers with TRUST_PROXY
 * off, garbage and expired tokens, all land in the address's buckets; every
 * 429 carries Retry-After and RateLimit-*. The node serves the web UI (as
 * `npm start` does): its static wildcard caught /api/x/, /api//x and
 * /api/x;p, which escaped every limit. Unparseable requests leave no token
 * in the log, even at trace.
 */
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { badInput } from "./support/figures.js";
import { type HeraldNode, providerToken, startNode, stopNode, tempDir } from "./support/processes.js";

const LIMIT = 20;
let node: HeraldNode;
const dir = tempDir();
beforeAll(async () => {
  // No Redis (local counters): the behaviour under test is the bucket choice, not the store.
  node = await startNode({ DATA_DIR: dir.dir, HERALD_RATE_LIMIT_PER_MINUTE: String(LIMIT), LOG_LEVEL: "trace" });
});
afterAll(async () => {
  await stopNode(node);
  dir.remove();
});

/** One raw HTTP/1.1 exchange; resolves with the whole answer when the server closes. */
function raw(request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(node.port, "127.0.0.1", () => s.write(request));
    let out = "";
    s.on("data", (d) => (out += d.toString("latin1")));
    s.on("close", () => resolve(out));
    s.on("error", reject);
  });
}
const status = (answer: string) => Number(answer.slice(9, 12));
const header = (answer: string, name: string) => new RegExp(`\r\n${name}: ([^\r]*)`, "i").exec(answer.split("\r\n\r\n")[0]!)?.[1];

describe("rate-limit evasion", () => {
  it("spellings of one route, forged forwarding headers, garbage and expired tokens: no request escapes the address's buckets", async () => {
    const route = "/api/push/vapid-public-key";
    const spellings = [
      route,
      "/%61pi/push/vapid-public-key",
      `http://127.0.0.1:${node.port}${route}`,
      `${route}/`,
      `${route};x=1`,
      "/api/push/../push/vapid-public-key",
      `${route}?cache=bust`,
      "/api//push/vapid-public-key",
    ];
    const forged = ["X-Forwarded-For: 198.51.100.1", "Forwarded: for=198.51.100.2", "X-Real-IP: 198.51.100.3", "X-Forwarded-For: 127.0.0.2, 198.51.100.4"];
    const answers: string[] = [];
    for (let i = 0; i < 3 * LIMIT; i++) {
      const method = i % 5 === 4 ? "HEAD" : "GET";
      const target = spellings[i % spellings.length]!;
      answers.push(await raw(`${method} ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${forged[i % forged.length]}\r\n\r\n`));
    }
    badInput("rate_limit_evasion", answers.length);
    const limited = answers.filter((a) => status(a) === 429);
    // The first LIMIT (some of them 404 for the spellings no route matches) pass; every later one is refused.
    expect(limited.length).toBe(2 * LIMIT);
    for (const a of answers) expect(header(a, "ratelimit-limit"), a.slice(0, 200)).toBe(String(LIMIT));
    for (const a of limited) {
      expect(Number(header(a, "retry-after"))).toBeGreaterThan(0);
      expect(header(a, "ratelimit-remaining")).toBe("0");
      expect(Number(header(a, "ratelimit-reset"))).toBeGreaterThan(0);
    }

    // Garbage and expired tokens share the address's failed-authentication budget (30 by default).
    const expired = await providerToken("evasion-user", 1);
    await new Promise((r) => setTimeout(r, 1_100)); // the token's own clock: nothing to await but its expiry
    const failures: number[] = [];
    for (let i = 0; i < 40; i++) {
      const token = i % 2 === 0 ? `garbage.${i}.x` : expired;
      failures.push(status(await raw(`GET /api/notifications HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer ${token}\r\n\r\n`)));
    }
    badInput("token", failures.length);
    expect(failures.filter((s) => s === 401)).toHaveLength(30);
    expect(failures.filter((s) => s === 429)).toHaveLength(10);
    // A valid provider token from the same address keeps its own budget.
    const own = await raw(`GET /api/notifications HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer ${await providerToken("evasion-fresh")}\r\n\r\n`);
    expect(status(own)).toBe(200);
  });

  it("a request Node cannot parse leaves no token in the log, even at trace", async () => {
    const secret = await providerToken("raw-packet-user");
    const answer = await raw(`GET /api/notifications?token=${secret} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${secret}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n`);
    badInput("malformed_http");
    expect(status(answer)).toBe(400);
    // The child writes its log line on its own schedule; the answer can reach us first.
    await node.proc.waitFor("client error", 10_000);
    const log = node.proc.output();
    expect(log).not.toContain("rawPacket");
    expect(log).not.toContain(secret.split(".")[2]);
  });
});
