import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { type Socket, connect } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, killGroup, spawnHerald } from "../support/process.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tempDir = () => {
  const d = mkdtempSync(path.join(tmpdir(), "herald-proc-"));
  dirs.push(d);
  return d;
};

/**
 * An authenticated request whose body never finishes: the route waits for the body and the HTTP server's
 * graceful close waits for the request (Fastify sets no request timeout), so the stop lasts until forced.
 */
async function unfinishedRequest(port: number, output: () => string): Promise<Socket> {
  const admin = /Admin token: (\S+)/.exec(output())![1]!;
  const socket = connect(port, "127.0.0.1");
  await once(socket, "connect");
  socket.write(
    `POST /api/notifications HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${admin}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{`,
  );
  socket.on("error", () => undefined);
  // Only a request the server has begun holds the stop: until it has read the headers the connection is
  // idle, and the stop closes it at once (a loaded CI machine finished the stop before the second signal).
  await expect.poll(output, { timeout: 10_000, interval: 20 }).toMatch(/"url":"\/api\/notifications"[^\n]*"msg":"incoming request"/);
  return socket;
}

describe("the herald process (npm start)", () => {
  it("refuses a bad environment value with one line naming the variable", async () => {
    const p = spawnHerald({ WEBSOCKET_PORT: "abc", DATA_DIR: tempDir() });
    const { code } = await p.exited;
    expect(code).toBe(1);
    expect(p.output().trim()).toBe('herald: Invalid environment variable WEBSOCKET_PORT: must be a number (got "abc")');
  });

  it("refuses to start in production without JWT_SECRET", async () => {
    const p = spawnHerald({ NODE_ENV: "production", DATA_DIR: tempDir() });
    const { code } = await p.exited;
    expect(code).toBe(1);
    expect(p.output()).toContain("JWT_SECRET: required when NODE_ENV=production");
  });

  it.each([
    [{ DATABASE_URL: "postgres://127.0.0.1:9/herald" }, "set JWT_SECRET so a token from one instance is accepted by the others"],
    [{ REDIS_URL: "redis://127.0.0.1:9", JWT_SECRET: "shared-secret-0123456789-0123456789-abc", VAPID_PUBLIC_KEY: "", VAPID_PRIVATE_KEY: "" }, "set VAPID_PUBLIC_KEY and VAPID_PRIVATE_KEY so"],
  ])("refuses to start on a shared database or Redis without shared secrets, saying why in one line (%j)", async (env, why) => {
    const dataDir = tempDir();
    const p = spawnHerald({ DATA_DIR: dataDir, ...env });
    const { code } = await p.exited;
    expect(code).toBe(1);
    expect(p.output().trim()).toMatch(new RegExp(`^herald: several instances share this (database|Redis): ${why.replace(/[()]/g, "\\$&")}[^\n]*$`));
  }, 120_000);

  it("starts on embedded defaults, prints working tokens, and exits 0 on SIGTERM", async () => {
    const port = await freePort();
    const dataDir = tempDir();
    const p = spawnHerald({ WEBSOCKET_PORT: String(port), DATA_DIR: dataDir, LOG_LEVEL: "warn" });
    await p.waitFor("Admin token: ", 150_000);
    const admin = /Admin token: (\S+)/.exec(p.output())![1]!;
    const provider = /Demo provider token \(sub=demo-provider\): (\S+)/.exec(p.output())![1]!;
    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/health`)).status).toBe(200);
    expect((await fetch(`${base}/ready`)).status).toBe(200);
    // The printed tokens work: the admin one creates, the provider one reads its inbox.
    const created = await fetch(`${base}/api/notifications`, {
      method: "POST",
      headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
      body: JSON.stringify({ userId: "demo-provider", type: "new_message", title: "Hello", message: "First notification" }),
    });
    expect(created.status).toBe(201);
    const inbox = await fetch(`${base}/api/notifications`, { headers: { authorization: `Bearer ${provider}` } });
    expect(inbox.status).toBe(200);
    expect(((await inbox.json()) as { total: number }).total).toBe(1);
    // The printed curl line pastes as is: the real admin token, no placeholder.
    const curl = /Try: (curl .*)/.exec(p.output())![1]!;
    expect(curl).toContain(`Bearer ${admin}`);
    const pasted = await promisify(execFile)("bash", ["-c", `${curl.replace("localhost", "127.0.0.1")} --silent --output /dev/null --write-out '%{http_code}'`]);
    expect(pasted.stdout).toBe("201");
    expect(((await (await fetch(`${base}/api/notifications`, { headers: { authorization: `Bearer ${provider}` } })).json()) as { total: number }).total).toBe(2);

    p.child.kill("SIGTERM");
    const deadline = setTimeout(() => p.child.kill("SIGKILL"), 5_000);
    const { code, signal } = await p.exited;
    clearTimeout(deadline);
    expect(signal).toBeNull();
    expect(code).toBe(0);
  }, 180_000);

  // A supervisor (systemd, a container's init) stops `npm start` by signalling npm's process. npm passes the
  // signal to the script's process; when that was the shell around node, the shell died and node went on
  // serving, orphaned, with the port and DATA_DIR's lock (the script now execs node).
  it("stops gracefully and leaves no process behind when SIGTERM goes to npm start's own process", async () => {
    const port = await freePort();
    const p = spawnHerald({ WEBSOCKET_PORT: String(port), DATA_DIR: tempDir(), LOG_LEVEL: "info" }, { viaNpm: true });
    try {
      await p.waitFor("Herald is running at", 150_000);
      expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
      // Every process that holds the output pipe (npm, and Herald under it) has ended when it closes.
      const allEnded = once(p.child, "close");
      p.child.kill("SIGTERM");
      await allEnded;
      expect(p.output()).toMatch(/"reason":"SIGTERM"[^\n]*"msg":"shutting down"/);
      expect(p.output()).not.toContain("shutdown took too long");
      // npm exits with Herald's code: 0, a clean stop.
      expect(await p.exited).toEqual({ code: 0, signal: null });
      await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow();
    } finally {
      killGroup(p);
    }
  }, 180_000);

  it("a second Ctrl-C while the graceful stop waits ends the process at once", async () => {
    const port = await freePort();
    const p = spawnHerald({ WEBSOCKET_PORT: String(port), DATA_DIR: tempDir(), LOG_LEVEL: "info" });
    await p.waitFor("Herald is running at", 150_000);
    const socket = await unfinishedRequest(port, p.output);
    p.child.kill("SIGINT");
    await p.waitFor(/"reason":"SIGINT"[^\n]*"msg":"shutting down"/);
    // A repeat counts only a second after the first (one Ctrl-C can arrive twice, from the terminal and npm).
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    p.child.kill("SIGINT");
    const { code, signal } = await p.exited;
    socket.destroy();
    expect({ code, signal }).toEqual({ code: 1, signal: null });
    expect(p.output()).toContain("asked again while shutting down; exiting now");
    // Not the 10 s timer's way out.
    expect(p.output()).not.toContain("shutdown took too long");
  }, 180_000);

  // Found by helper-77: after a hang-up the process ends by SIGHUP, which skips pino's flush at exit, so
  // the line saying why it ended then was lost.
  it("after a hang-up, a second Ctrl-C ends it by SIGHUP with its log line written (output to a file)", async () => {
    const port = await freePort();
    const dataDir = tempDir();
    const logFile = path.join(dataDir, "out.log");
    const fd = openSync(logFile, "w");
    const child = spawn(process.execPath, ["--conditions=herald-source", "--import", "tsx", "src/main.ts"], {
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", WEBSOCKET_PORT: String(port), DATA_DIR: dataDir, LOG_LEVEL: "info" },
      stdio: ["ignore", fd, fd],
    });
    closeSync(fd);
    const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
    const output = () => readFileSync(logFile, "utf8");
    await expect.poll(output, { timeout: 150_000, interval: 100 }).toContain("Herald is running at");
    const socket = await unfinishedRequest(port, output);
    child.kill("SIGHUP");
    await expect.poll(output, { timeout: 10_000, interval: 20 }).toMatch(/"reason":"SIGHUP"[^\n]*"msg":"shutting down"/);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    child.kill("SIGINT");
    const [code, signal] = await exited;
    socket.destroy();
    expect({ code, signal }).toEqual({ code: null, signal: "SIGHUP" });
    expect(output()).toContain("asked again while shutting down; exiting now");
  }, 180_000);
});
