import { allFinite } from "../vector";
import { STRATEGY_NAMES, type StrategyName, type StrategyState } from "./types";

/**
 * Binary form of a server optimizer's state, for the coordinator to store next to the model version it
 * belongs to (a bytea, like the weights):
 *   bytes 0-3   magic "FWS1"
 *   byte  4     strategy, its index in STRATEGY_NAMES
 *   byte  5     number of vectors (the strategy's, in STATE_VECTORS order)
 *   bytes 6-7   zero
 *   bytes 8-11  rounds aggregated into the state, uint32 little-endian
 *   bytes 12-15 float32 values per vector (the model's weights), uint32 LE
 *   bytes 16-   the vectors one after the other, float32 LE
 */
const MAGIC = [0x46, 0x57, 0x53, 0x31];
const HEADER_BYTES = 16;

/** The vectors each stateful strategy keeps, in stored order; the others keep none. */
export const STATE_VECTORS: Readonly<Partial<Record<StrategyName, readonly string[]>>> = {
  fedavgm: ["momentum"],
  fedadam: ["m", "v"],
  fedyogi: ["m", "v"],
  fedadagrad: ["m", "v"],
};

export class StrategyStateError extends Error {
  override name = "StrategyStateError";
}

function namesOf(strategy: StrategyName): readonly string[] {
  const names = STATE_VECTORS[strategy];
  if (!names) throw new StrategyStateError(`${strategy} keeps no server state, so there is none to store.`);
  return names;
}

export function encodeStrategyState(state: StrategyState): Uint8Array {
  const index = STRATEGY_NAMES.indexOf(state.strategy);
  if (index < 0) throw new StrategyStateError(`"${state.strategy}" is not a strategy fedward knows.`);
  const names = namesOf(state.strategy);
  if (!(Number.isInteger(state.rounds) && state.rounds >= 0 && state.rounds <= 0xffffffff))
    throw new StrategyStateError(`A state's rounds must be a uint32, got ${state.rounds}.`);
  const extra = Object.keys(state.vectors).filter((name) => !names.includes(name));
  if (extra.length > 0)
    throw new StrategyStateError(
      `${state.strategy} keeps ${names.join(" and ")}, not ${extra.join(" and ")}.`,
    );
  const vectors = names.map((name) => {
    const v = state.vectors[name];
    if (!v) throw new StrategyStateError(`The ${state.strategy} state has no "${name}" vector.`);
    return v;
  });
  const count = (vectors[0] as Float32Array).length;
  if (vectors.some((v) => v.length !== count))
    throw new StrategyStateError(
      `The ${state.strategy} state's vectors differ in length (${vectors.map((v) => v.length).join(", ")}).`,
    );
  const bytes = new Uint8Array(HEADER_BYTES + 4 * count * vectors.length);
  const view = new DataView(bytes.buffer);
  bytes.set(MAGIC, 0);
  bytes[4] = index;
  bytes[5] = vectors.length;
  view.setUint32(8, state.rounds, true);
  view.setUint32(12, count, true);
  let offset = HEADER_BYTES;
  for (const v of vectors)
    for (let i = 0; i < count; i++, offset += 4) view.setFloat32(offset, v[i] as number, true);
  return bytes;
}

/** Decodes and checks a stored state; `expected` (the plan's strategy and model size) is checked too. */
export function decodeStrategyState(
  bytes: Uint8Array,
  expected?: { strategy?: StrategyName; count?: number },
): StrategyState {
  const fail = (message: string) =>
    new StrategyStateError(`The stored server state is unreadable: ${message}.`);
  if (bytes.length < HEADER_BYTES)
    throw fail(`it has ${bytes.length} bytes, fewer than its ${HEADER_BYTES}-byte header`);
  if (MAGIC.some((b, i) => bytes[i] !== b)) throw fail('it does not start with "FWS1"');
  if (bytes[6] !== 0 || bytes[7] !== 0) throw fail("bytes 6-7 are not zero (written by an unknown version)");
  const strategy = STRATEGY_NAMES[bytes[4] as number];
  if (strategy === undefined) throw fail(`strategy number ${bytes[4]} is unknown`);
  const names = STATE_VECTORS[strategy];
  if (!names) throw fail(`it names ${strategy}, which keeps no state`);
  if (bytes[5] !== names.length)
    throw fail(`${strategy} keeps ${names.length} vector(s), the state ${bytes[5]}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const rounds = view.getUint32(8, true);
  const count = view.getUint32(12, true);
  if (bytes.length !== HEADER_BYTES + 4 * count * names.length)
    throw fail(
      `${names.length} vector(s) of ${count} values need ${HEADER_BYTES + 4 * count * names.length} bytes, it has ${bytes.length}`,
    );
  if (expected?.strategy !== undefined && expected.strategy !== strategy)
    throw fail(`it was written by ${strategy}, but the plan aggregates with ${expected.strategy}`);
  if (expected?.count !== undefined && expected.count !== count)
    throw fail(`its vectors have ${count} values, but the plan's model has ${expected.count} weights`);
  const vectors: Record<string, Float32Array> = {};
  let offset = HEADER_BYTES;
  for (const name of names) {
    const v = new Float32Array(count);
    for (let i = 0; i < count; i++, offset += 4) v[i] = view.getFloat32(offset, true);
    if (!allFinite(v)) throw fail(`its "${name}" vector holds a value that is not finite`);
    vectors[name] = v;
  }
  return { strategy, rounds, vectors };
}
