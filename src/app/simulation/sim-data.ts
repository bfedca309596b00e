import type { ImportWorkerApi } from "../../../workers/import.worker";
import type { WorkerBridge } from "../../client/bridges";
import { csvColumn, type Plan, parsePlan, planHash } from "../../core/plan";
import {
  holdoutSplit,
  labelSkew,
  partitionDirichlet,
  partitionIid,
  seededUniform,
} from "../../core/simulation/partition";
import type { FedwardDb } from "../../store/db";

/**
 * The simulation's data: the bundled WDBC demo (public/demo, fetched from the app's own origin), pooled,
 * split once into a held-out set and a training pool, and the pool dealt into N simulated sites. Every part
 * is imported into IndexedDB by the real import worker, as a dataset of its own under a federation id that
 * starts with SIMULATION_PREFIX (never a real enrolment's), so the training workers read it exactly as they
 * read a hospital's import.
 */
export const SIMULATION_PREFIX = "simulation:";
const DEMO_FILES = ["wdbc-site1.csv", "wdbc-site2.csv", "wdbc-site3.csv"];

export interface DemoData {
  plan: Plan;
  header: string;
  /** Data lines of the three demo files, pooled, without the header. */
  rows: string[];
  labels: (0 | 1)[];
}

export interface PartitionOptions {
  sites: number;
  partition: "iid" | "dirichlet";
  /** Dirichlet concentration (non-IID only). */
  alpha: number;
  seed: number;
}

export interface SiteData {
  datasetId: string;
  examples: number;
  positives: number;
}

export interface SimulationData {
  runId: string;
  sites: SiteData[];
  /** Every site's training rows together: the "all data in one place" baseline. */
  pooledDatasetId: string;
  /** The one held-out set every curve is evaluated on (its rows are in no training set). */
  holdoutDatasetId: string;
  holdoutExamples: number;
  /** Mean total variation distance of the sites' label mixes from the pool's (0 = IID). */
  skew: number;
}

async function fetchDemo(name: string): Promise<string> {
  // BASE_URL keeps the app working when a static host serves it under a sub-path.
  const url = `${import.meta.env.BASE_URL}demo/${name}`;
  const res = await fetch(url);
  if (!res.ok) {
    throw new Error(
      `The demo file ${url} could not be loaded (HTTP ${res.status}); the app's build is incomplete.`,
    );
  }
  return res.text();
}

export async function loadDemo(): Promise<DemoData> {
  const plan = parsePlan(JSON.parse(await fetchDemo("wdbc-plan.json")), "the demo plan");
  const texts = await Promise.all(DEMO_FILES.map(fetchDemo));
  let header = "";
  const rows: string[] = [];
  for (const text of texts) {
    const [head, ...lines] = text.split(/\r?\n/);
    if (header && head !== header)
      throw new Error("The demo files have different headers; the build is broken.");
    header = head ?? "";
    rows.push(...lines.filter((l) => l.trim() !== ""));
  }
  // The demo files hold no quoted fields (checked here), so a plain split reads the label.
  const labelAt = header.split(",").indexOf(csvColumn(plan.label));
  const labels = rows.map((row, i) => {
    const value = row.includes('"') ? undefined : row.split(",")[labelAt];
    if (value === plan.label.positive) return 1;
    if (value === plan.label.negative) return 0;
    throw new Error(`Demo row ${i + 1} has no readable label; the bundled demo data is damaged.`);
  });
  return { plan, header, rows, labels };
}

/** Removes every simulation dataset (this run's, or a run's left behind by a closed tab) and its shards. */
export async function deleteSimulationData(db: FedwardDb): Promise<void> {
  await db.transaction("rw", db.datasets, db.shards, async () => {
    const ids = await db.datasets.filter((d) => d.federationId.startsWith(SIMULATION_PREFIX)).primaryKeys();
    await db.shards.where("datasetId").anyOf(ids).delete();
    await db.datasets.bulkDelete(ids);
  });
}

/**
 * The import worker splits rows into train and held-out by a hash of the line number and the plan's
 * holdout fraction. Here the simulation has already chosen the split (seeded, one for all curves), so each
 * part is imported with a fraction that puts all its rows on one side; the counts are checked afterwards.
 */
const ALL_TRAIN = 1e-9;
const ALL_HOLDOUT = 1 - 1e-9;

export async function prepareData(
  demo: DemoData,
  options: PartitionOptions,
  importer: WorkerBridge<ImportWorkerApi>,
  onStatus: (text: string) => void,
): Promise<SimulationData> {
  const uniform = seededUniform(options.seed);
  const { plan } = demo;
  const { train, holdout } = holdoutSplit(demo.rows.length, plan.evaluation.holdoutFraction, uniform);
  const trainLabels = train.map((i) => demo.labels[i] as number);
  const parts =
    options.partition === "iid"
      ? partitionIid(train.length, options.sites, uniform)
      : partitionDirichlet(trainLabels, options.sites, options.alpha, uniform);
  const skew = labelSkew(trainLabels, parts);
  const runId = crypto.randomUUID();
  const hash = await planHash(plan);

  const importPart = async (name: string, indices: number[], side: "train" | "holdout") => {
    const text = [demo.header, ...indices.map((i) => demo.rows[i])].join("\n");
    const file = new File([text], `${name}.csv`, { type: "text/csv" });
    const fraction = side === "train" ? ALL_TRAIN : ALL_HOLDOUT;
    const partPlan: Plan = { ...plan, evaluation: { holdoutFraction: fraction } };
    const federationId = `${SIMULATION_PREFIX}${runId}:${name}`;
    const summary = await importer.guard(importer.api.importCsv(file, partPlan, federationId, hash));
    const got = side === "train" ? summary.numTrain : summary.numHoldout;
    if (got !== indices.length || summary.rowsSkipped !== 0) {
      throw new Error(
        `The simulated ${name} data was imported as ${summary.numTrain} training and ${summary.numHoldout} ` +
          `held-out rows, not ${indices.length} ${side} rows.`,
      );
    }
    return { datasetId: summary.id, examples: indices.length, positives: summary.positives };
  };

  const sites: SiteData[] = [];
  for (const [k, part] of parts.entries()) {
    onStatus(`Importing simulated hospital ${k + 1} of ${parts.length} into this browser's storage…`);
    sites.push(
      await importPart(
        `site-${k + 1}`,
        part.map((j) => train[j] as number),
        "train",
      ),
    );
  }
  onStatus("Importing the pooled data and the held-out set…");
  const pooled = await importPart("pooled", train, "train");
  const held = await importPart("holdout", holdout, "holdout");
  return {
    runId,
    sites,
    pooledDatasetId: pooled.datasetId,
    holdoutDatasetId: held.datasetId,
    holdoutExamples: holdout.length,
    skew,
  };
}
