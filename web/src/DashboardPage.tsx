import { AnalyticsDashboard } from "herald/react";

/** `/analytics`: the operators' dashboard. */
export function DashboardPage({ token, onSignOut }: { token: string; onSignOut(reason?: string): void }) {
  return (
    <>
      <div className="page-head">
        <p className="muted">Delivery and engagement across all providers</p>
        <button type="button" className="link" onClick={() => onSignOut()}>
          Sign out
        </button>
      </div>
      <AnalyticsDashboard token={token} />
    </>
  );
}
