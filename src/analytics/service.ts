/** SHELL (owned by the analytics work, issue 6). */
import type { Runtime } from "../runtime.js";
import { defaultRuntime } from "../runtime.js";

export type AnalyticsDeps = Pick<Runtime, "database" | "cache" | "clock" | "logger" | "analytics">;

export class AnalyticsService {
  readonly deps: Promise<AnalyticsDeps>;
  constructor(deps?: AnalyticsDeps | Promise<AnalyticsDeps>) {
    this.deps = Promise.resolve(deps ?? defaultRuntime());
  }
}
