/**
 * One owner of start and stop: components start in the order they are added
 * and stop in reverse, so nothing stops while something started after it
 * still uses it. A start that fails stops what already started, then throws.
 * Stopping is idempotent, and one component's failure to stop does not keep
 * the others running (the failures are thrown together at the end).
 */
export interface Component {
  /** Named in errors: "<name> failed to start". */
  readonly name: string;
  start?(): Promise<void> | void;
  stop?(): Promise<void> | void;
}

export class Lifecycle {
  private readonly running: Component[] = [];
  private stopping: Promise<void> | undefined;

  /** Starts `component` after everything started before it. */
  async start(component: Component): Promise<void> {
    if (this.stopping) throw new Error(`${component.name} started after stop()`);
    try {
      await component.start?.();
    } catch (err) {
      await this.stop().catch(() => undefined);
      throw new Error(`${component.name} failed to start: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    if (this.stopping) {
      // stop() ran while this one was starting and could not see it: stop it here.
      await component.stop?.();
      throw new Error(`${component.name} started after stop()`);
    }
    this.running.push(component);
  }

  /** Starts each in order. */
  async startAll(components: Component[]): Promise<void> {
    for (const component of components) await this.start(component);
  }

  /** Stops every started component, last started first. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const failures: unknown[] = [];
      for (const component of this.running.reverse()) {
        try {
          await component.stop?.();
        } catch (err) {
          failures.push(new Error(`${component.name} failed to stop: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
        }
      }
      this.running.length = 0;
      if (failures.length === 1) throw failures[0];
      if (failures.length > 1) throw new AggregateError(failures, "several components failed to stop");
    })();
    return this.stopping;
  }
}
