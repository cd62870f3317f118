import { Suspense, lazy, useCallback, useState } from "react";
import { CenterPage } from "./CenterPage.js";
import { Shell } from "./Shell.js";
import { SignIn } from "./SignIn.js";
import { type Page, clearToken, storeToken, storedToken } from "./token.js";

// The dashboard (and its chart library) loads only on /analytics.
const DashboardPage = lazy(() => import("./DashboardPage.js").then((m) => ({ default: m.DashboardPage })));

export function App({ page }: { page: Page }) {
  const [token, setToken] = useState(() => storedToken(page));
  const [notice, setNotice] = useState<string | undefined>();
  const signIn = (t: string) => {
    storeToken(page, t);
    setNotice(undefined);
    setToken(t);
  };
  const signOut = useCallback(
    (reason?: string) => {
      clearToken(page);
      setNotice(reason);
      setToken(null);
    },
    [page],
  );
  return (
    <Shell page={page}>
      {!token ? (
        <SignIn page={page} onToken={signIn} notice={notice} />
      ) : page === "analytics" ? (
        <Suspense fallback={<p className="muted">Loading…</p>}>
          <DashboardPage token={token} onSignOut={signOut} />
        </Suspense>
      ) : (
        <CenterPage token={token} onSignOut={signOut} />
      )}
    </Shell>
  );
}
