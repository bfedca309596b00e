import type { BackendChoice } from "../../workers/train/backends";

const NAMES: Record<string, string> = {
  webgpu: "the GPU (WebGPU)",
  webgl: "the GPU (WebGL)",
  wasm: "WebAssembly",
  cpu: "plain JavaScript (slow)",
};

/** About how long one round takes, from the examples it reads (epochs × rows, or DP-SGD's steps × batch). */
export function roundTimeText(seconds: number): string {
  if (!Number.isFinite(seconds)) return "";
  if (seconds < 60) return "under a minute per round";
  const minutes = Math.round(seconds / 60);
  return `about ${minutes} minute${minutes === 1 ? "" : "s"} per round`;
}

/**
 * The backend choice in plain words, with a time per round from the measured speed and the dataset's size
 * ("This computer offers no GPU to the browser; training will use WebAssembly, about 4 minutes per round.").
 */
export function backendAdvice(choice: BackendChoice, examplesPerRound: number): string {
  const measured = choice.measurements.find((m) => m.backend === choice.backend)?.examplesPerSecond;
  const time = measured ? `, ${roundTimeText(examplesPerRound / measured)}` : "";
  const name = NAMES[choice.backend] ?? choice.backend;
  if (choice.backend === "webgpu" || choice.backend === "webgl") {
    if (choice.adapter?.fallback) {
      return `This computer's GPU is emulated in software; training will use ${name}${time}. It works, only slowly.`;
    }
    return `Training will use ${name}${time}.`;
  }
  const lead = !choice.adapter
    ? "This computer offers no GPU to the browser"
    : choice.adapter.fallback
      ? "This computer offers the browser only a software-emulated GPU"
      : choice.measurements.length === 0
        ? `${name} was chosen in the settings`
        : `${name} measured faster than the GPU here`;
  return `${lead}; training will use ${name}${time}.`;
}
