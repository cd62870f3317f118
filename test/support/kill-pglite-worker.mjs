/**
 * Preloaded (NODE_OPTIONS=--import) into a `npm start` child by
 * test/process/pglite-lost-exit.test.ts: keeps the embedded database's
 * worker thread (the Worker whose workerData names a dataDir) so the test can
 * kill it as a crash would. SIGUSR2 terminates it; with
 * HERALD_TEST_KILL_PGLITE=ready it is terminated as soon as it reports the
 * database open (before migrations, so before Herald listens).
 */
import { createRequire, syncBuiltinESMExports } from "node:module";

const require = createRequire(import.meta.url);
const threads = require("node:worker_threads");

if (threads.isMainThread) {
  const Original = threads.Worker;
  const workers = [];
  threads.Worker = class extends Original {
    constructor(file, options) {
      super(file, options);
      if (options?.workerData && typeof options.workerData === "object" && "dataDir" in options.workerData) {
        workers.push(this);
        if (process.env.HERALD_TEST_KILL_PGLITE === "ready") this.once("message", () => void this.terminate());
      }
    }
  };
  syncBuiltinESMExports();
  process.on("SIGUSR2", () => {
    process.stdout.write(`killing ${workers.length} PGlite worker(s)\n`);
    for (const w of workers) void w.terminate();
  });
}
