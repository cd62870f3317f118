/**
 * The lifecycle owner: start in order, stop in reverse, a failed start undoes
 * what started, a failed stop does not keep the rest running. And the domain
 * classes start nothing when constructed (the WebSocket server takes the
 * http.Server's upgrades only in start()).
 */
import { createServer } from "node:http";
import { describe, expect, it } from "vitest";
import { Lifecycle } from "../../src/lifecycle.js";
import { NotificationWebSocketServer } from "../../src/realtime/index.js";
import { NotificationWebSocketServer as GuideWebSocketServer } from "../../src/guide.js";
import { createHerald } from "../../src/herald.js";
import { loadConfig } from "../../src/config/index.js";
import { openTestDatabase } from "../support/database.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

function recorder() {
  const events: string[] = [];
  const component = (name: string, fail?: "start" | "stop") => ({
    name,
    start: async () => {
      events.push(`start ${name}`);
      if (fail === "start") throw new Error(`${name} broke`);
    },
    stop: async () => {
      events.push(`stop ${name}`);
      if (fail === "stop") throw new Error(`${name} stuck`);
    },
  });
  return { events, component };
}

describe("Lifecycle", () => {
  it("starts in order and stops in reverse, once", async () => {
    const { events, component } = recorder();
    const lifecycle = new Lifecycle();
    await lifecycle.startAll([component("db"), component("http"), component("jobs")]);
    await Promise.all([lifecycle.stop(), lifecycle.stop()]);
    await lifecycle.stop();
    expect(events).toEqual(["start db", "start http", "start jobs", "stop jobs", "stop http", "stop db"]);
  });

  it("a failed start stops what started before it and names the component", async () => {
    const { events, component } = recorder();
    const lifecycle = new Lifecycle();
    await expect(lifecycle.startAll([component("db"), component("http", "start"), component("jobs")])).rejects.toThrow("http failed to start: http broke");
    expect(events).toEqual(["start db", "start http", "stop db"]);
    await expect(lifecycle.start(component("late"))).rejects.toThrow("late started after stop()");
  });

  it("a component still starting when stop() runs is stopped too", async () => {
    const { events, component } = recorder();
    const lifecycle = new Lifecycle();
    await lifecycle.start(component("db"));
    let release!: () => void;
    const slow = { name: "jobs", start: () => new Promise<void>((resolve) => { release = resolve; }), stop: async () => void events.push("stop jobs") };
    const starting = lifecycle.start(slow);
    const stopped = lifecycle.stop();
    release();
    await expect(starting).rejects.toThrow("jobs started after stop()");
    await stopped;
    expect(events).toEqual(["start db", "stop db", "stop jobs"]);
  });

  it("a failed stop does not keep the others running, and is reported", async () => {
    const { events, component } = recorder();
    const lifecycle = new Lifecycle();
    await lifecycle.startAll([component("db"), component("http", "stop"), component("jobs")]);
    await expect(lifecycle.stop()).rejects.toThrow("http failed to stop: http stuck");
    expect(events.slice(3)).toEqual(["stop jobs", "stop http", "stop db"]);
  });
});

describe("construction starts nothing", () => {
  it("the domain WebSocket server takes upgrades only once started; the guide's form starts itself", async () => {
    const db = await openTestDatabase();
    const dataDir = mkdtempSync(path.join(tmpdir(), "herald-lifecycle-"));
    const herald = await createHerald({
      config: loadConfig({ NODE_ENV: "test", DATA_DIR: dataDir, JWT_SECRET: "lifecycle-test-secret-0123456789-abcdefgh", LOG_LEVEL: "silent" }),
      database: db,
      jobs: false,
      serveWeb: false,
    });
    try {
      const server = createServer();
      const core = new NotificationWebSocketServer(server, herald.runtime);
      expect(server.listenerCount("upgrade")).toBe(0);
      await expect(core.publishToUser("u", { type: "pong" })).rejects.toThrow("start() was not called");
      await core.start();
      expect(server.listenerCount("upgrade")).toBe(1);
      await core.close();
      expect(server.listenerCount("upgrade")).toBe(0);

      const guideServer = createServer();
      const guide = new GuideWebSocketServer(guideServer, herald.runtime);
      expect(guideServer.listenerCount("upgrade")).toBe(1);
      await guide.close();
      // createHerald's own server was started by its lifecycle, on the http.Server Fastify answers on.
      expect(herald.app.server.listenerCount("upgrade")).toBe(1);
    } finally {
      await herald.stop();
      await db.cleanup();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
