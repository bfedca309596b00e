/**
 * Grey levels to [0, 1]: the Modality LUT (rescale) and the plan's fixed VOI window.
 *
 * The window is the caller's (the plan's), never the file's Window Center / Width: those differ between
 * sites and scanners, may hold several values, and a model trained on one site's display choice would learn
 * the display, not the anatomy.
 */

export interface VoiWindow {
  /** Window Center in modality units (Hounsfield units for CT). */
  center: number;
  /** Window Width; at least 1 (PS3.3 C.11.2.1.2.1). */
  width: number;
}

/** Throws RangeError for a window the linear VOI function is not defined for. */
export function checkWindow(window: VoiWindow): void {
  if (!Number.isFinite(window.center) || !Number.isFinite(window.width) || window.width < 1) {
    throw new RangeError(
      `window {center: ${window.center}, width: ${window.width}} is not usable: the width must be a number ≥ 1 ` +
        "and the center a finite number (PS3.3 C.11.2.1.2.1)",
    );
  }
}

/** The linear VOI function's constants, so a loop over pixels does no divisions it can avoid. */
export interface LinearVoi {
  /** At or below: 0. */
  low: number;
  /** Above: 1. */
  high: number;
  /** c - 0.5 */
  shiftedCenter: number;
  /** 1 / (w - 1); unused when w is 1 (then low equals high and no value falls between). */
  inverseSpan: number;
}

export function linearVoi(window: VoiWindow): LinearVoi {
  checkWindow(window);
  const { center: c, width: w } = window;
  return {
    low: c - 0.5 - (w - 1) / 2,
    high: c - 0.5 + (w - 1) / 2,
    shiftedCenter: c - 0.5,
    inverseSpan: w > 1 ? 1 / (w - 1) : 0,
  };
}

/**
 * DICOM PS3.3 C.11.2.1.2.1 "Default LINEAR Function" with ymin = 0 and ymax = 1:
 *   x <= c - 0.5 - (w-1)/2        → 0
 *   x >  c - 0.5 + (w-1)/2        → 1
 *   otherwise ((x - (c - 0.5)) / (w-1) + 0.5)
 * x is the modality value (after rescale), as the standard says.
 */
export function applyLinearVoi(x: number, voi: LinearVoi): number {
  if (x <= voi.low) return 0;
  if (x > voi.high) return 1;
  return (x - voi.shiftedCenter) * voi.inverseSpan + 0.5;
}

/** Modality LUT by Rescale Slope and Intercept (PS3.3 C.11.1.1.2): output units = m · SV + b. */
export function rescale(storedValue: number, slope: number, intercept: number): number {
  return storedValue * slope + intercept;
}
