/** SHELL (owned by the notifications work, issue 3): the user directory. */
import type { Runtime } from "../runtime.js";
import { defaultRuntime } from "../runtime.js";

export type UserDirectoryDeps = Pick<Runtime, "database" | "clock">;

export class UserDirectory {
  readonly deps: Promise<UserDirectoryDeps>;
  constructor(deps?: UserDirectoryDeps | Promise<UserDirectoryDeps>) {
    this.deps = Promise.resolve(deps ?? defaultRuntime());
  }
  async upsert(_user: UserInput): Promise<void> {}
}

export interface UserInput {
  id: string;
  email?: string | null;
  phone?: string | null;
  name?: string | null;
  timezone?: string;
  locale?: string;
}
