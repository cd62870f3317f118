/**
 * Batched writers (one statement over unnest() arrays for many rows) must not
 * let one row the database refuses block every other row forever. When a
 * batch is refused for its data (SQLSTATE class 22 "data exception" or 23
 * "integrity constraint": a NUL, a malformed uuid, a constraint), it is split
 * in halves until each refused row is alone; the good rows are written and
 * each refused one goes to `setAside` (the caller logs it). Any other error
 * (the database is down) is thrown, so the caller keeps the whole batch and
 * retries it later.
 */
export function isRefusedData(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && (code.startsWith("22") || code.startsWith("23"));
}

export async function writeIsolating<T>(rows: T[], write: (rows: T[]) => Promise<void>, setAside: (row: T, err: unknown) => void): Promise<void> {
  if (rows.length === 0) return;
  try {
    await write(rows);
  } catch (err) {
    if (!isRefusedData(err)) throw err;
    if (rows.length === 1) return setAside(rows[0]!, err);
    const half = Math.ceil(rows.length / 2);
    await writeIsolating(rows.slice(0, half), write, setAside);
    await writeIsolating(rows.slice(half), write, setAside);
  }
}
