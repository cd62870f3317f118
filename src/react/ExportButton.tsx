import { useState } from "react";
import type { HeraldApi } from "./api.js";

/**
 * Downloads the export as a file. The API needs the bearer token, which a
 * plain link cannot send, so the CSV is fetched and saved through a blob URL.
 */
export function ExportButton({ api, path, filename }: { api: HeraldApi; path: string; filename: string }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const onClick = async () => {
    setBusy(true);
    setError(null);
    try {
      const blob = await api.download(path);
      const href = URL.createObjectURL(blob);
      const a = document.createElement("a");
      a.href = href;
      a.download = filename;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(href), 10_000);
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <span className="herald-export">
      <button type="button" onClick={() => void onClick()} disabled={busy} data-testid="export-csv">
        {busy ? "Exporting…" : "Export CSV"}
      </button>
      {error && (
        <span className="herald-error" role="alert">
          {error}
        </span>
      )}
    </span>
  );
}
