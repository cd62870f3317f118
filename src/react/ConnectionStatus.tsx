import type { ConnectionState } from "./inbox.js";

const LABELS: Record<ConnectionState, string> = {
  open: "Live",
  connecting: "Connecting…",
  reconnecting: "Reconnecting…",
  offline: "Offline",
};

/** A dot and a word saying whether live updates are flowing. */
export function ConnectionStatus({ state }: { state: ConnectionState }) {
  return (
    <span className={`herald-conn herald-conn-${state}`} role="status" data-testid="connection-state" data-state={state}>
      <span className="herald-conn-dot" aria-hidden="true" />
      {LABELS[state]}
    </span>
  );
}
