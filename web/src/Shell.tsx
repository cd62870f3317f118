import type { ReactNode } from "react";
import { BellIcon } from "../../src/react/TypeIcon.js";
import type { Page } from "./token.js";

/** The page frame: brand, navigation between the two pages, and a slot on the right (bell, sign out). */
export function Shell({ page, right, children }: { page: Page; right?: ReactNode; children: ReactNode }) {
  return (
    <div className="shell">
      <header className="topbar">
        <a className="brand" href="/">
          <BellIcon size={20} /> Herald
        </a>
        <nav>
          <a href="/" aria-current={page === "center" ? "page" : undefined}>
            Notifications
          </a>
          <a href="/analytics" aria-current={page === "analytics" ? "page" : undefined}>
            Analytics
          </a>
        </nav>
        <div className="topbar-right">{right}</div>
      </header>
      <main>{children}</main>
    </div>
  );
}
