import type { ConditionFact, EncounterFact, ObservationFact, PatientFact } from "../../src/core/cohort/facts";
import { DAY_MS, type Span } from "../../src/core/cohort/time";
import { CryptoRandom } from "../../src/core/random";
import type { FedwardDb, StagedFact, StagingRow } from "../../src/store/db";

/**
 * What keeps a cohort import's staged facts (IndexedDB, between its two passes) free of identifiers and
 * exact dates: patients become per-import sequential keys, times move by a secret per-patient shift, and
 * resource ids become hashes. The secrets live in `PatientKeys`, in the worker's memory only.
 */

/** ±5 years in whole days: a shift is uniform in [-MAX_SHIFT_DAYS, MAX_SHIFT_DAYS]. */
const MAX_SHIFT_DAYS = 1826;

/**
 * Patient reference ("Patient/<id>", or an OMOP person_id) -> sequential key, with each key's secret time
 * shift, holdout key and whether its Patient (PERSON) was seen. The only structure that grows with the
 * number of patients: one Map entry (its key a ~44-character string) plus 7 bytes of typed arrays, about
 * 100 bytes per patient in all on V8 (measured by test/bench/cohort-import.ts).
 */
export class PatientKeys {
  private readonly keys = new Map<string, number>();
  private shiftDays = new Int16Array(1024);
  private holdout = new Uint32Array(1024);
  private seen = new Uint8Array(1024);

  get size(): number {
    return this.keys.size;
  }

  /** The patient's key, made (with a fresh random shift) on first sight. */
  keyOf(ref: string): number {
    let key = this.keys.get(ref);
    if (key !== undefined) return key;
    key = this.keys.size;
    if (key === this.seen.length) this.grow();
    this.shiftDays[key] = randomShiftDays();
    this.holdout[key] = fnv1a32(ref);
    this.keys.set(ref, key);
    return key;
  }

  /** Marks the patient's own record as read; false when it had been read before (a duplicate). */
  markSeen(key: number): boolean {
    const first = this.seen[key] === 0;
    this.seen[key] = 1;
    return first;
  }

  wasSeen(key: number): boolean {
    return this.seen[key] === 1;
  }

  shiftMs(key: number): number {
    return (this.shiftDays[key] as number) * DAY_MS;
  }

  holdoutKey(key: number): number {
    return this.holdout[key] as number;
  }

  private grow() {
    const n = this.seen.length * 2;
    const shift = new Int16Array(n);
    shift.set(this.shiftDays);
    const holdout = new Uint32Array(n);
    holdout.set(this.holdout);
    const seen = new Uint8Array(n);
    seen.set(this.seen);
    [this.shiftDays, this.holdout, this.seen] = [shift, holdout, seen];
  }
}

const random = new CryptoRandom();

/** Uniform whole days in [-MAX, MAX] (crypto bytes, by rejection), so no shift is likelier than another. */
function randomShiftDays(): number {
  return random.uniformInt(2 * MAX_SHIFT_DAYS + 1) - MAX_SHIFT_DAYS;
}

const encoder = new TextEncoder();

/**
 * FNV-1a 32-bit of the UTF-8 bytes: the holdout key ("Patient/<id>" or the person_id, so the same
 * patient gets the same key from a bundle as from a bulk export) and the tie-break that replaces ids.
 */
export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of encoder.encode(text)) {
    h ^= byte;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A resource id as a fixed-width hash: same order key in every import, no id. */
function tie(id: string): string {
  return fnv1a32(id).toString(16).padStart(8, "0");
}

const move = (span: Span, by: number): Span => ({ start: span.start + by, end: span.end + by });
const moveOpt = (span: Span | undefined, by: number) => (span === undefined ? undefined : move(span, by));

/** The fact as staged: times moved by `by` ms, the id hashed. `unstage` with -by undoes it exactly. */
export function stageFact(fact: StagedFact, by: number): StagedFact {
  switch (fact.kind) {
    case "patient": {
      const { birth, gender, death }: PatientFact = fact.fact;
      return { kind: "patient", fact: { birth: moveOpt(birth, by), gender, death: moveOpt(death, by) } };
    }
    case "death":
      return { kind: "death", death: move(fact.death, by) };
    case "observation":
      return {
        kind: "observation",
        fact: { ...fact.fact, id: tie(fact.fact.id), time: move(fact.fact.time, by) },
      };
    case "condition":
      return {
        kind: "condition",
        fact: { ...fact.fact, id: tie(fact.fact.id), time: move(fact.fact.time, by) },
      };
    case "encounter":
      return { kind: "encounter", fact: { ...fact.fact, time: move(fact.fact.time, by) } };
    case "problem":
      return fact;
  }
}

/** Undoes the shift (ids stay hashed: they only order facts of equal time). */
export function unshift<T extends ObservationFact | ConditionFact | EncounterFact>(fact: T, by: number): T {
  return { ...fact, time: move(fact.time, -by) };
}

export function unshiftPatient(fact: PatientFact, by: number): PatientFact {
  return { birth: moveOpt(fact.birth, -by), gender: fact.gender, death: moveOpt(fact.death, -by) };
}

export function unshiftSpan(span: Span, by: number): Span {
  return move(span, -by);
}

const BATCH_ROWS = 2000;

/**
 * Buffers staged rows and writes them with one bulkAdd per batch. One batch is written while the next is
 * being parsed (IndexedDB commits off the worker's thread), so at most two batches are in memory: waiting
 * for each write before parsing on left the worker idle for a third of a FHIR import.
 */
export class StagingWriter {
  private rows: StagingRow[] = [];
  private seq = 0;
  private writing: Promise<void> | undefined;

  constructor(
    private readonly db: FedwardDb,
    readonly importId: string,
    private readonly keys: PatientKeys,
  ) {}

  /** Stages one fact of patient `key`, shifted by its secret; writes when a batch is full. */
  async add(key: number, fact: StagedFact): Promise<void> {
    const staged = stageFact(fact, this.keys.shiftMs(key));
    this.rows.push({ importId: this.importId, patient: key, seq: this.seq++, ...staged });
    if (this.rows.length >= BATCH_ROWS) await this.startWrite();
  }

  /** Writes what is buffered and waits until every write has committed (and throws if one failed). */
  async flush(): Promise<void> {
    await this.startWrite();
    const last = this.writing;
    this.writing = undefined;
    await last;
  }

  /**
   * Waits for the write in flight, ignoring its failure: after an error or a cancel, so the staging rows
   * are deleted only once nothing is still being written (else a late batch would outlive the delete).
   */
  async settle(): Promise<void> {
    const last = this.writing;
    this.writing = undefined;
    await last?.catch(() => undefined);
  }

  /** Waits for the write in flight, then starts writing the buffered rows without waiting for them. */
  private async startWrite(): Promise<void> {
    const previous = this.writing;
    this.writing = undefined;
    await previous;
    if (this.rows.length === 0) return;
    const rows = this.rows;
    this.rows = [];
    const write = this.db.staging.bulkAdd(rows).then(() => undefined);
    // Observed here so a failure is not "unhandled" before flush() or the next batch awaits it.
    write.catch(() => undefined);
    this.writing = write;
  }
}

/** Patients [from, to) of an import, in key order, then write order. */
export function stagedRange(db: FedwardDb, importId: string, from: number, to: number) {
  return db.staging.where(":id").between([importId, from], [importId, to], true, false).toArray();
}

/** [id] sorts before every [id, patient, seq] and [id, []] after them (arrays sort after numbers). */
export async function deleteStaging(db: FedwardDb, importId: string): Promise<void> {
  await db.staging.where(":id").between([importId], [importId, []], true, true).delete();
}

type Locks = {
  request(name: string, run: () => Promise<unknown>): Promise<unknown>;
  query(): Promise<{ held?: { name?: string }[] }>;
};
const LOCK_PREFIX = "fedward-cohort-import-";

function locks(): Locks | undefined {
  return (globalThis as { navigator?: { locks?: Locks } }).navigator?.locks;
}

/**
 * Runs the import while holding a Web Lock named after it, so another tab's sweep can tell a running
 * import from one whose worker was killed. Without Web Locks (Node) it simply runs.
 */
export async function withImportLock<T>(importId: string, run: () => Promise<T>): Promise<T> {
  const manager = locks();
  if (manager === undefined) return run();
  let result: T | undefined;
  await manager.request(`${LOCK_PREFIX}${importId}`, async () => {
    result = await run();
  });
  return result as T;
}

/**
 * Deletes the staging rows of imports that are not running: killed workers and closed tabs leave theirs
 * behind. Without Web Locks every other import's rows go (one import runs per browser in practice).
 */
export async function sweepStaging(db: FedwardDb, current: string): Promise<void> {
  const manager = locks();
  const held = manager === undefined ? undefined : await manager.query();
  const running = new Set((held?.held ?? []).map((l) => l.name ?? ""));
  let row = await db.staging.orderBy(":id").first();
  while (row !== undefined) {
    const id = row.importId;
    if (id !== current && !running.has(`${LOCK_PREFIX}${id}`)) await deleteStaging(db, id);
    row = await db.staging.where(":id").above([id, []]).first();
  }
}
