/**
 * OpenDatabaseOptions.pgliteImage: PGlite starts from a dumped data
 * directory, on the calling thread and in the worker thread alike. What the
 * image holds is there; each database loaded from it is its own cluster (a
 * write in one is not seen in another, nor in the image); a corrupt image
 * fails the open with an error instead of an empty database. PGlite only,
 * whatever DATABASE_URL says.
 */
import { randomUUID } from "node:crypto";
import { PGlite } from "@electric-sql/pglite";
import { beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/db/index.js";

/** Opening PGlite compiles its WebAssembly: slow on a loaded machine. */
const OPEN_TIMEOUT = 180_000;

let image: Blob;
const marker = randomUUID();

beforeAll(async () => {
  const source = await PGlite.create("memory://");
  await source.exec(`CREATE TABLE image_marker (value text NOT NULL); INSERT INTO image_marker VALUES ('${marker}');`);
  image = await source.dumpDataDir("none");
  await source.close();
}, OPEN_TIMEOUT);

describe.each([
  { thread: false, label: "on the calling thread" },
  { thread: true, label: "in the worker thread" },
])("PGlite from an image $label", ({ thread }) => {
  it(
    "starts with what the image holds, and each load is its own cluster",
    async () => {
      const a = await openDatabase({ pgliteThread: thread, pgliteImage: image });
      const b = await openDatabase({ pgliteThread: thread, pgliteImage: image });
      try {
        expect(await a.query("SELECT value FROM image_marker")).toEqual([{ value: marker }]);
        await a.exec("INSERT INTO image_marker VALUES ('only in a'); CREATE TABLE only_in_a (x int);");
        expect(await b.query("SELECT value FROM image_marker")).toEqual([{ value: marker }]);
        expect(await b.query("SELECT to_regclass('only_in_a') AS t")).toEqual([{ t: null }]);
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
      // The image itself is unchanged by the loads' writes.
      const c = await openDatabase({ pgliteThread: thread, pgliteImage: image });
      try {
        expect(await c.query("SELECT value FROM image_marker")).toEqual([{ value: marker }]);
      } finally {
        await c.close();
      }
    },
    OPEN_TIMEOUT,
  );

  it(
    "without an image starts an empty cluster",
    async () => {
      const db = await openDatabase({ pgliteThread: thread });
      try {
        expect(await db.query("SELECT to_regclass('image_marker') AS t")).toEqual([{ t: null }]);
      } finally {
        await db.close();
      }
    },
    OPEN_TIMEOUT,
  );

  it(
    "refuses a corrupt image with an error, also when several fail at once",
    async () => {
      // Not gzip-looking garbage: PGlite 0.5's gunzip of it leaves an unhandled rejection of its own.
      const truncated = image.slice(0, Math.floor(image.size / 2));
      await expect(openDatabase({ pgliteThread: thread, pgliteImage: truncated })).rejects.toThrow(/initialize/);
      // The worker throws after it reports the failure; its error came while it was terminated
      // and, with no listener left, crashed the process (one at a time it rarely did, six at once always).
      const opens = await Promise.allSettled(Array.from({ length: 6 }, () => openDatabase({ pgliteThread: thread, pgliteImage: new Blob([]) })));
      expect(opens.map((o) => o.status)).toEqual(Array(6).fill("rejected"));
    },
    OPEN_TIMEOUT,
  );
});
