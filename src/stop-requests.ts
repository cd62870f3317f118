/**
 * What `npm start` does with each stop signal, given the ones before it: the
 * first begins the graceful stop; a SIGINT or SIGTERM at least
 * REPEAT_AFTER_MS later forces the exit (Ctrl-C pressed again: whoever asks
 * wants out now); anything sooner is the same request arriving twice (one
 * Ctrl-C reaches node from the terminal and again from npm when npm's shell
 * execs it, and GNU `timeout` signals the child and then its group). A SIGHUP
 * at any point means the terminal is gone: the process ends by that signal.
 */
export const REPEAT_AFTER_MS = 1_000;

export type StopDecision = "stop" | "force" | "ignore";

export class StopRequests {
  private firstAt: number | undefined;
  private hangUp = false;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Some signal so far was SIGHUP. */
  get hungUp(): boolean {
    return this.hangUp;
  }

  take(signal: string): StopDecision {
    if (signal === "SIGHUP") this.hangUp = true;
    if (this.firstAt === undefined) {
      this.firstAt = this.now();
      return "stop";
    }
    const repeatable = signal === "SIGINT" || signal === "SIGTERM";
    return repeatable && this.now() - this.firstAt >= REPEAT_AFTER_MS ? "force" : "ignore";
  }
}
