/** Runs `src/main.ts` as a child process, as `npm start` would, for tests that kill it. */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, "close");
  return port;
}

export interface HeraldProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves when the output contains `text` (rejects if the process exits first). */
  waitFor(text: string | RegExp, timeoutMs?: number): Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Web Push keys for test instances that share a database or Redis (npm start refuses those without shared keys). */
export const TEST_VAPID_KEYS = {
  VAPID_PUBLIC_KEY: "BCwN2VwOnECZ3r693GQs8e1s685D0XLJUniWZh6DQSa17Y-rA-oArra-xJAJnwrXetLYi8LeD9ZuNfyaVKwPIpg",
  VAPID_PRIVATE_KEY: "efJu0qrCtnaOQqsNcJGwhtO0eoSw8-NBXKTtAcpV_iY",
};

/**
 * Starts src/main.ts with `env` (and TEST_VAPID_KEYS when it names a DATABASE_URL or REDIS_URL and no keys; "" unsets them).
 * `viaNpm` runs `npm start` itself (npm, and the node its script execs): `child` is then npm's process, as a supervisor sees it.
 */
export function spawnHerald(env: Record<string, string>, options: { viaNpm?: boolean } = {}): HeraldProcess {
  const shared = env.DATABASE_URL !== undefined || env.REDIS_URL !== undefined;
  // Under `npm test`, the npm that runs the tests (with this Node); else the one on PATH.
  const npm = process.env.npm_execpath?.endsWith(".js") ? [process.execPath, process.env.npm_execpath] : ["npm"];
  const [command, ...args] = options.viaNpm ? [...npm, "start"] : [process.execPath, "--conditions=herald-source", "--import", "tsx", "src/main.ts"];
  const child = spawn(command!, args, {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...(shared ? TEST_VAPID_KEYS : {}), ...env },
    stdio: ["ignore", "pipe", "pipe"],
    // npm's own process group, so a test can end npm and whatever it started at once (killGroup).
    detached: options.viaNpm === true,
  });
  let out = "";
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    out += chunk.toString("utf8");
    for (const l of [...listeners]) l();
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    output: () => out,
    exited,
    waitFor(text, timeoutMs = 30_000) {
      const matches = () => (typeof text === "string" ? out.includes(text) : text.test(out));
      if (matches()) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => done(new Error(`timed out waiting for ${text}; output:\n${out}`)), timeoutMs);
        const check = () => matches() && done();
        const done = (err?: Error) => {
          clearTimeout(timer);
          listeners.delete(check);
          err ? reject(err) : resolve();
        };
        listeners.add(check);
        void exited.then(() => !matches() && done(new Error(`process exited before ${text}; output:\n${out}`)));
      });
    },
  };
}

/** SIGKILL to every process of a `viaNpm` child's group (npm, and Herald under it), if any is left. */
export function killGroup(p: HeraldProcess): void {
  try {
    if (p.child.pid !== undefined) process.kill(-p.child.pid, "SIGKILL");
  } catch {
    // Nothing left.
  }
}
