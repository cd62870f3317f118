import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import "../../src/react/styles.css";
import "./app.css";
import { App } from "./App.js";
import { type Page, takeTokenFromFragment } from "./token.js";

const page: Page = window.location.pathname.replace(/\/+$/, "").startsWith("/analytics") ? "analytics" : "center";
// Before anything renders: the fragment leaves the address bar at once.
takeTokenFromFragment(page);

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App page={page} />
  </StrictMode>,
);
