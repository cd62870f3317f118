/**
 * The worker thread that owns the embedded database (pglite-thread.ts starts
 * it): PGlite runs its queries synchronously in WebAssembly, so on the main
 * thread every query stopped the event loop. Here each request calls the same
 * PGlite method the in-thread database calls, so PGlite's own queue orders
 * them as before: an open transaction holds the one connection and other
 * statements wait for its end.
 */
import { parentPort, workerData } from "node:worker_threads";
import { PGlite, type Transaction } from "@electric-sql/pglite";
import { PgliteStatements } from "./pglite-statements.js";
import { type ObjectParam, type PgliteReply, type PgliteRequest, type PgliteWorkerData, reviveObjectParam, serializeError } from "./pglite-protocol.js";

const port = parentPort;
if (!port) throw new Error("pglite-worker.ts runs as a worker thread");
const { dataDir, image } = workerData as PgliteWorkerData;

interface OpenTransaction {
  tx: Transaction;
  /** Ends the transaction (COMMIT or ROLLBACK); the "end" request's id gets the outcome. */
  end(commit: boolean, replyTo: number): void;
}

let outbox: PgliteReply[] = [];
function send(reply: PgliteReply): void {
  outbox.push(reply);
  if (outbox.length === 1) queueMicrotask(flush);
}
function flush(): void {
  const batch = outbox;
  outbox = [];
  port?.postMessage(batch);
}
const fail = (id: number, err: unknown) => send({ id, ok: false, error: serializeError(err) });

let client: PGlite;
try {
  client = await PGlite.create(dataDir, image ? { loadDataDir: image } : {});
  port.postMessage({ ready: true });
} catch (err) {
  port.postMessage({ ready: false, error: serializeError(err) });
  throw err;
}
const statements = new PgliteStatements(client);
const transactions = new Map<number, OpenTransaction>();
const listeners = new Map<number, () => Promise<void>>();

/** The session a statement runs on: its transaction, or PGlite itself (which waits for any open one). */
function sessionOf(tx: number | undefined): PGlite | Transaction {
  if (tx === undefined) return client;
  const open = transactions.get(tx);
  if (!open) throw new Error("Transaction is closed");
  return open.tx;
}

function begin(id: number): void {
  let began = false;
  let replyTo = id;
  client
    .transaction(async (tx) => {
      began = true;
      const commit = await new Promise<boolean>((resolve) => {
        const end = (c: boolean, r: number) => {
          replyTo = r;
          resolve(c);
        };
        transactions.set(id, { tx, end });
        send({ id, ok: true });
      });
      transactions.delete(id);
      if (!commit) await tx.rollback();
    })
    .then(
      () => send({ id: replyTo, ok: true }),
      (err: unknown) => {
        transactions.delete(id);
        // BEGIN itself failed: the "begin" request is still waiting for its answer.
        fail(began ? replyTo : id, err);
      },
    );
}

async function handle(req: PgliteRequest): Promise<void> {
  switch (req.op) {
    case "query": {
      const params = req.objects ? req.params?.map((p, i) => (req.objects?.includes(i) ? reviveObjectParam(p as ObjectParam) : p)) : req.params;
      const session = sessionOf(req.tx);
      const rows = session === client ? await statements.query(req.text, params) : await statements.queryIn(session as Transaction, req.text, params);
      send({ id: req.id, ok: true, rows });
      return;
    }
    case "exec":
      await sessionOf(req.tx).exec(req.text);
      send({ id: req.id, ok: true });
      return;
    case "begin":
      begin(req.id);
      return;
    case "end": {
      const open = transactions.get(req.tx);
      if (!open) throw new Error("Transaction is closed");
      open.end(req.commit, req.id);
      return;
    }
    case "listen": {
      const id = req.id;
      listeners.set(id, await client.listen(req.channel, (payload) => send({ notify: id, payload })));
      send({ id, ok: true });
      return;
    }
    case "unlisten": {
      const stop = listeners.get(req.listen);
      listeners.delete(req.listen);
      await stop?.();
      send({ id: req.id, ok: true });
      return;
    }
    case "close":
      await client.close();
      send({ id: req.id, ok: true });
      return;
  }
}

port.on("message", (batch: PgliteRequest[]) => {
  for (const req of batch) handle(req).catch((err: unknown) => fail(req.id, err));
});
