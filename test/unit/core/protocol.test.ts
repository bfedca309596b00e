import { describe, expect, it } from "vitest";
import { apiPaths } from "../../../src/core/protocol";

describe("apiPaths", () => {
  it("builds every route with the federation id percent-encoded", () => {
    // Prepare: an id with a slash, a space and a question mark must stay one path segment
    const id = "fed/1 ?x";

    // Execute
    const paths = [
      apiPaths.enroll,
      apiPaths.state(id),
      apiPaths.model(id, 0),
      apiPaths.update(id, 12),
      apiPaths.finalModelJson(id),
      apiPaths.finalWeights(id),
    ];

    // Assert
    expect(paths).toEqual([
      "/api/enroll",
      "/api/federations/fed%2F1%20%3Fx/state",
      "/api/federations/fed%2F1%20%3Fx/models/0",
      "/api/federations/fed%2F1%20%3Fx/rounds/12/update",
      "/api/federations/fed%2F1%20%3Fx/final/model.json",
      "/api/federations/fed%2F1%20%3Fx/final/weights.bin",
    ]);
  });
});
