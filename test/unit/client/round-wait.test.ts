import { describe, expect, it } from "vitest";
import { durationText, roundWaitText, timeLeftMs } from "../../../src/client/round-wait";
import type { FederationState } from "../../../src/core/protocol";

const serverTime = "2027-03-01T08:00:00.000Z";

function state(overrides: Partial<FederationState> = {}): FederationState {
  return {
    federationId: "f",
    title: "T",
    planHash: "h",
    status: "training",
    round: 2,
    rounds: 3,
    modelVersion: 1,
    minSites: 2,
    sitesEnrolled: 3,
    sitesActive: 3,
    updatesThisRound: 1,
    uploadedThisRound: true,
    deadline: "2027-03-01T08:03:20.000Z",
    deadlineExtensions: 0,
    serverTime,
    waitingFor: "quorum",
    myUpload: null,
    ...overrides,
  };
}

describe("durationText", () => {
  it.each([
    [0, "0 s"],
    [44_600, "45 s"],
    [200_000, "3 min 20 s"],
    [180_000, "3 min"],
    [7_500_000, "2 h 5 min"],
    [7_200_000, "2 h"],
    [3 * 86_400_000, "3 days"],
    [-5_000, "0 s"],
  ])("%i ms is %s", (ms, text) => {
    expect(durationText(ms)).toBe(text);
  });
});

describe("roundWaitText", () => {
  it("counts the time left by the coordinator's clock, not this computer's", () => {
    expect(timeLeftMs(state())).toBe(200_000);
    expect(timeLeftMs(state({ deadline: null }))).toBeUndefined();
    expect(timeLeftMs(state({ serverTime: "2027-03-01T08:05:00.000Z" }))).toBe(0);
  });

  it("says the round needs its quorum, when it closes and that the deadline moves on otherwise", () => {
    expect(roundWaitText(state({ deadlineExtensions: 2 }))).toMatch(
      /^1 of 3 sites have sent their update; the round needs 2\. It closes at .* \(in 3 min 20 s\) if 2 have sent by then; otherwise its deadline moves on\. The deadline has moved on 2 times so far\.$/,
    );
  });

  it("says the round waits for the other sites until the deadline once it has its quorum", () => {
    expect(roundWaitText(state({ updatesThisRound: 2, waitingFor: "sites" }))).toMatch(
      /^2 of 3 sites have sent their update; the round closes when the other site has sent or at .* \(in 3 min 20 s\), whichever comes first\.$/,
    );
  });

  it("without a deadline, says the round closes at its quorum", () => {
    expect(roundWaitText(state({ deadline: null }))).toBe(
      "1 of 3 sites have sent their update; the round closes as soon as 2 have.",
    );
  });
});
