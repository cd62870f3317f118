/** SHELL (owned by the digest work, issue 5). */
import type { Runtime } from "../runtime.js";
import { defaultRuntime } from "../runtime.js";

export interface SmtpConfig {
  host: string;
  port: number;
  secure?: boolean;
  auth?: { user: string; pass: string };
  from: string;
}

export type DigestDeps = Pick<Runtime, "database" | "clock" | "logger" | "config" | "metrics">;

export class EmailDigestService {
  readonly deps: Promise<DigestDeps>;
  constructor(
    readonly smtp: SmtpConfig | undefined,
    deps?: DigestDeps | Promise<DigestDeps>,
  ) {
    this.deps = Promise.resolve(deps ?? defaultRuntime());
  }
  async initializeScheduledJobs(): Promise<void> {}
  async stop(): Promise<void> {}
}
