/**
 * The web UI: web/dist (built by `npm run build`) served at /, /analytics and
 * /assets/*. The two pages are one single-page app, so both paths (and any
 * path below /analytics) answer with index.html. Hashed assets are cached
 * for a year; index.html is revalidated on every load so a new build shows
 * at once. When web/dist is missing, the pages answer 503 with the fix, and
 * `npm start` builds it in the background (`ensureWebBuild`).
 */
import { existsSync } from "node:fs";
import { cp, mkdir, rename, rm } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import type { FastifyPluginAsync, FastifyReply } from "fastify";

/** Repository root, from src/http/routes (source) or dist/http/routes (library build). */
const packageRoot = fileURLToPath(new URL("../../../", import.meta.url));
export const webDir = path.join(packageRoot, "web");
export const webDistDir = path.join(webDir, "dist");

export interface WebRoutesOptions {
  /** Directory holding index.html and assets/ (default web/dist). */
  distDir?: string;
}

// Recharts sets inline styles, hence 'unsafe-inline' for styles only; scripts are same-origin files.
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self' ws: wss:",
  "frame-ancestors 'none'",
  "base-uri 'self'",
  "form-action 'self'",
].join("; ");

export const webRoutes: FastifyPluginAsync<WebRoutesOptions> = async (app, opts) => {
  const root = opts.distDir ?? webDistDir;

  await app.register(fastifyStatic, {
    root,
    prefix: "/",
    wildcard: true,
    index: false,
    redirect: false,
    dotfiles: "ignore",
    cacheControl: false,
    suppressWarning: true,
    schemaHide: true,
    logLevel: "warn",
    setHeaders(res, filePath) {
      const immutable = filePath.includes(`${path.sep}assets${path.sep}`);
      res.header("cache-control", immutable ? "public, max-age=31536000, immutable" : "no-cache");
      res.header("x-content-type-options", "nosniff");
    },
  });

  const sendIndex = (reply: FastifyReply) => {
    reply
      .header("content-security-policy", CSP)
      .header("referrer-policy", "no-referrer")
      .header("x-content-type-options", "nosniff")
      .header("cache-control", "no-cache");
    if (!existsSync(path.join(root, "index.html"))) {
      return reply.code(503).header("retry-after", "5").type("text/html; charset=utf-8").send(NOT_BUILT);
    }
    return reply.sendFile("index.html", root, { cacheControl: false });
  };

  const page = { schema: { hide: true }, logLevel: "warn" as const };
  app.get("/", page, (_req, reply) => sendIndex(reply));
  app.get("/analytics", page, (_req, reply) => sendIndex(reply));
  app.get("/analytics/*", page, (_req, reply) => sendIndex(reply));
};

const NOT_BUILT = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>Herald</title></head><body style="font-family:system-ui;max-width:40em;margin:3em auto">
<h1>The web UI is not built yet</h1>
<p>Run <code>npm run build</code> (it writes <code>web/dist</code>). <code>npm start</code> builds it by itself when it is missing;
this page reloads every few seconds until it is ready.</p></body></html>`;

export interface WebBuildLogger {
  info(msg: string): void;
  warn(msg: string): void;
}

/**
 * Builds web/dist when it is missing, with Vite in this process. The build
 * goes to a private directory first and is renamed into place, so two
 * processes starting at once never serve a half-written directory. Vite is a
 * development dependency: without it, this logs how to build and returns.
 */
export async function ensureWebBuild(log: WebBuildLogger, distDir: string = webDistDir): Promise<boolean> {
  if (existsSync(path.join(distDir, "index.html"))) return true;
  const config = path.join(webDir, "vite.config.ts");
  if (!existsSync(config)) {
    log.warn("web UI sources not found (web/); the pages at / and /analytics are unavailable");
    return false;
  }
  let vite: typeof import("vite");
  try {
    vite = await import("vite");
  } catch {
    log.warn("web/dist is missing and Vite is not installed: run `npm install && npm run build` to serve the web UI");
    return false;
  }
  const tmp = path.join(packageRoot, "node_modules", ".cache", `herald-web-build-${process.pid}`);
  log.info("web/dist is missing: building the web UI (npm run build)…");
  try {
    await rm(tmp, { recursive: true, force: true });
    await mkdir(path.dirname(tmp), { recursive: true });
    await vite.build({ configFile: config, root: webDir, logLevel: "warn", build: { outDir: tmp, emptyOutDir: true } });
    if (existsSync(path.join(distDir, "index.html"))) return true; // another process finished first
    await rm(distDir, { recursive: true, force: true });
    await rename(tmp, distDir).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== "EXDEV") throw err;
      await cp(tmp, distDir, { recursive: true });
    });
    log.info("web UI built into web/dist");
    return true;
  } catch (err) {
    log.warn(`building the web UI failed (${(err as Error).message}); run \`npm run build\``);
    return existsSync(path.join(distDir, "index.html"));
  } finally {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
  }
}
