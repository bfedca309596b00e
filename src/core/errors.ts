/**
 * An error the user can fix (their file, their data, the plan, this computer's setup), as opposed to a
 * network hiccup ("try again") or a bug of ours. The name survives the worker boundary (comlink copies it),
 * so the page can tell the three apart.
 */
export class InputError extends Error {
  override name = "InputError";
}

/** Names of errors that mean "your input": the page shows them without "please report this bug". */
export const INPUT_ERROR_NAMES = ["InputError", "ImportError", "PlanError", "WireError"] as const;
