/**
 * StopRequests: which stop signal begins the graceful stop, which forces the
 * exit, and which is the same request arriving twice (helper-77 found one
 * Ctrl-C reaching node twice ~1 ms apart under npm, which 5b10bcf took for a
 * second Ctrl-C and exited without the graceful stop).
 */
import { describe, expect, it } from "vitest";
import { REPEAT_AFTER_MS, StopRequests } from "../../src/stop-requests.js";

/** Feeds `signals` as [name, ms since the first] to one StopRequests; returns its decisions and whether it hung up. */
function run(signals: [string, number][]) {
  let now = 0;
  const requests = new StopRequests(() => now);
  const decisions = signals.map(([signal, at]) => {
    now = at;
    return requests.take(signal);
  });
  return { decisions, hungUp: requests.hungUp };
}

describe("StopRequests", () => {
  it.each([
    ["one Ctrl-C", [["SIGINT", 0]], ["stop"], false],
    ["one Ctrl-C arriving twice (terminal and npm), 1 ms apart", [["SIGINT", 0], ["SIGINT", 1]], ["stop", "ignore"], false],
    ["SIGTERM to timeout's child, then to its group", [["SIGTERM", 0], ["SIGTERM", 2]], ["stop", "ignore"], false],
    ["a second Ctrl-C just under the repeat time", [["SIGINT", 0], ["SIGINT", REPEAT_AFTER_MS - 1]], ["stop", "ignore"], false],
    ["a second Ctrl-C at the repeat time", [["SIGINT", 0], ["SIGINT", REPEAT_AFTER_MS]], ["stop", "force"], false],
    ["Ctrl-C, then SIGTERM later", [["SIGINT", 0], ["SIGTERM", 5_000]], ["stop", "force"], false],
    ["a hang-up", [["SIGHUP", 0]], ["stop"], true],
    ["a hang-up twice, later", [["SIGHUP", 0], ["SIGHUP", 5_000]], ["stop", "ignore"], true],
    ["a hang-up, then a late Ctrl-C", [["SIGHUP", 0], ["SIGINT", 5_000]], ["stop", "force"], true],
    ["a Ctrl-C, then the terminal closes", [["SIGINT", 0], ["SIGHUP", 100]], ["stop", "ignore"], true],
    ["the database lost, then a late Ctrl-C", [["database lost", 0], ["SIGINT", 5_000]], ["stop", "force"], false],
    ["a Ctrl-C, then the database lost", [["SIGINT", 0], ["database lost", 5_000]], ["stop", "ignore"], false],
  ] as [string, [string, number][], string[], boolean][])("%s", (_name, signals, decisions, hungUp) => {
    expect(run(signals)).toEqual({ decisions, hungUp });
  });
});
