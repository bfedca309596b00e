/** Medians for the benchmarks: these machines are noisy, so a figure is the middle of several runs. */

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

/** Median milliseconds of `runs` calls of `fn`, after one warm-up call; waits for each call's promise. */
export async function timeMs(runs: number, fn: () => unknown): Promise<number> {
  await fn(); // warm-up
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    ms.push(performance.now() - t);
  }
  return median(ms);
}
