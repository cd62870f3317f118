/**
 * Type icons as inline SVG (no icon font, no emoji font needed), tinted per
 * type. A notification's own `icon` is shown instead when it is a short glyph.
 */

/** Per type: its tint, an optional rounded frame (x, y, width, height) drawn first, and the path over it. */
const ICONS: Record<string, { color: string; frame?: readonly [number, number, number, number]; path: string }> = {
  new_message: { color: "#2563eb", path: "M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z" },
  booking_request: { color: "#7c3aed", frame: [3, 4, 18, 18], path: "M16 2v4M8 2v4M3 10h18M12 14v4M10 16h4" },
  booking_confirmed: { color: "#16a34a", frame: [3, 4, 18, 18], path: "M16 2v4M8 2v4M3 10h18M9 16l2 2 4-4" },
  payment_received: { color: "#0d9488", frame: [2, 5, 20, 14], path: "M2 10h20M6 15h4" },
  platform_update: { color: "#64748b", path: "M3 11v2a1 1 0 0 0 1 1h2l5 4V6L6 10H4a1 1 0 0 0-1 1zM15.5 8.5a5 5 0 0 1 0 7M19 5a10 10 0 0 1 0 14" },
  security_alert: { color: "#dc2626", frame: [4, 11, 16, 10], path: "M8 11V7a4 4 0 0 1 8 0v4" },
};

const BELL = "M18 8a6 6 0 1 0-12 0c0 7-3 9-3 9h18s-3-2-3-9M13.7 21a2 2 0 0 1-3.4 0";

export function BellIcon({ size = 20 }: { size?: number }) {
  return (
    <svg width={size} height={size} viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth={2} strokeLinecap="round" strokeLinejoin="round" aria-hidden="true">
      <path d={BELL} />
    </svg>
  );
}

export function TypeIcon({ type, icon, size = 22 }: { type: string; icon?: string | null; size?: number }) {
  if (icon && [...icon].length <= 2) return <span aria-hidden="true">{icon}</span>;
  const entry = Object.hasOwn(ICONS, type) ? ICONS[type] : undefined;
  const frame = entry?.frame;
  return (
    <svg
      width={size}
      height={size}
      viewBox="0 0 24 24"
      fill="none"
      stroke={entry?.color ?? "#64748b"}
      strokeWidth={2}
      strokeLinecap="round"
      strokeLinejoin="round"
      aria-hidden="true"
      data-type={type}
    >
      {frame && <rect x={frame[0]} y={frame[1]} width={frame[2]} height={frame[3]} rx="2" />}
      <path d={entry?.path ?? BELL} />
    </svg>
  );
}
