export { buildHttpApp } from "./app.js";
export { ensureWebBuild } from "./routes/web.js";
export type { HttpAppOptions } from "./app.js";
export type { HttpServices } from "./services.js";
