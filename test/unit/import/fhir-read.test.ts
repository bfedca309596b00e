import { existsSync, openAsBlob, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync, gzipSync } from "node:zlib";
import { beforeAll, describe, expect, it } from "vitest";
import {
  type FhirProblem,
  type FhirResource,
  type ReadOptions,
  readBundle,
  readFhirFile,
  readNdjson,
} from "../../../workers/import/fhir-read";

/**
 * Facts about ../shared/data/fhir that these tests rest on (checked with a separate Python script, and by
 * the tests below):
 * - synthea-r4-bundles holds 200 files but 199 patients: `hospitalInformation*.json.gz` is a transaction
 *   of 102 Organizations and no Patient. Every urn:uuid reference resolves inside its own bundle.
 * - synthea-r4-bulk is every entry of those 200 bundles, split by type, with `urn:uuid:X` rewritten to
 *   `Type/X` and nothing else changed (no meta, no fullUrl): all 39,865 entries have an identical line.
 *   Organizations and Practitioners repeat once per bundle that holds them (39,865 lines, 39,391 ids), and
 *   80 Organization ids come in two versions: hospitalInformation's copy carries Synthea's utilization
 *   extensions. So a bulk line is "one of the copies", not "the" copy, of such an id.
 * - smart-bulk-10-patients has 13 Patients: 10 living and 3 with deceasedDateTime. It has no Observation
 *   or DiagnosticReport file, and `log.ndjson.gz` is the export's log (4 lines that are no resources).
 */
const DATA = fileURLToPath(new URL("../../../../shared/data/fhir", import.meta.url));
const HAVE_DATA = existsSync(DATA);
if (!HAVE_DATA) console.warn(`fhir-read: the tests on real FHIR files are skipped: ${DATA} is absent.`);

const BUNDLES = "synthea-r4-bundles";
const BULK = "synthea-r4-bulk";
const SMART = "smart-bulk-10-patients";
const PER_PATIENT_TYPES = ["Patient", "Condition", "Observation", "Encounter"];

type Reader = typeof readFhirFile;

interface Read {
  resources: FhirResource[];
  problems: FhirProblem[];
}

async function readAll(reader: Reader, file: Blob, options?: ReadOptions): Promise<Read> {
  const problems: FhirProblem[] = [];
  const resources: FhirResource[] = [];
  for await (const resource of reader(file, (p) => problems.push(p), options)) resources.push(resource);
  return { resources, problems };
}

function bytesOf(folder: string, name: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(readFileSync(join(DATA, folder, name)));
}

function dataFile(folder: string, name: string, rename = name): File {
  return new File([bytesOf(folder, name)], rename);
}

/** The NDJSON file's decompressed lines, without the final empty one. */
function lines(folder: string, name: string): string[] {
  const text = new TextDecoder().decode(gunzipSync(bytesOf(folder, name)));
  return text.split("\n").filter((line, i, all) => i < all.length - 1 || line !== "");
}

const utf8 = (text: string) => new TextEncoder().encode(text);
const byteLength = (text: string) => utf8(text).byteLength;
const key = (r: FhirResource) => `${r.resourceType}/${r.id}`;
const byKey = (rs: FhirResource[]) => [...rs].sort((a, b) => key(a).localeCompare(key(b)));

/** A File whose stream() hands out chunks of the given sizes in turn, and records being cancelled. */
class ChunkedFile extends File {
  cancelled = false;

  constructor(
    private readonly content: Uint8Array<ArrayBuffer>,
    name: string,
    private readonly sizes: number[],
  ) {
    super([content], name);
  }

  override stream(): ReadableStream<Uint8Array<ArrayBuffer>> {
    let at = 0;
    let turn = 0;
    return new ReadableStream({
      pull: (controller) => {
        if (at >= this.content.length) return controller.close();
        const size = this.sizes[turn++ % this.sizes.length] as number;
        controller.enqueue(this.content.slice(at, at + size));
        at += size;
      },
      cancel: () => {
        this.cancelled = true;
      },
    });
  }
}

/** The patient a resource belongs to, by the references Synthea uses. */
function patientOf(resource: FhirResource): string | undefined {
  if (resource.resourceType === "Patient") return resource.id;
  for (const field of ["subject", "patient"]) {
    const reference = (resource[field] as { reference?: string } | undefined)?.reference;
    if (reference?.startsWith("Patient/")) return reference.slice("Patient/".length);
  }
  return undefined;
}

/** Problems must name places, never contents: none of these strings from the file may appear. */
function expectNoContent(problems: FhirProblem[], secrets: string[]) {
  for (const { message } of problems) for (const secret of secrets) expect(message).not.toContain(secret);
}

describe.runIf(HAVE_DATA)("FHIR readers on the shared Synthea exports", () => {
  const bundleNames = HAVE_DATA ? readdirSync(join(DATA, BUNDLES)).sort() : [];
  const hospital = bundleNames.filter((name) => name.startsWith("hospitalInformation"));
  const patientBundles = bundleNames.filter((name) => !name.startsWith("hospitalInformation"));
  /** Five patients spread over the alphabet, and the bundle that holds the shared Organizations. */
  const sample = [0, 40, 80, 120, 160].map((i) => patientBundles[i] as string).concat(hospital);
  const fromBundles = new Map<string, Read>();
  /** Bulk lines whose Type/id is in a sampled bundle, or that belong to a sampled patient. */
  const fromBulk: FhirResource[] = [];

  beforeAll(async () => {
    for (const name of sample) fromBundles.set(name, await readAll(readFhirFile, dataFile(BUNDLES, name)));
    const keys = new Set([...fromBundles.values()].flatMap(({ resources }) => resources.map(key)));
    const patients = new Set([...fromBundles.values()].flatMap(({ resources }) => resources.map(patientOf)));
    for (const name of readdirSync(join(DATA, BULK))) {
      const { resources, problems } = await readAll(readFhirFile, dataFile(BULK, name));
      expect(problems).toEqual([]);
      fromBulk.push(...resources.filter((r) => keys.has(key(r)) || patients.has(patientOf(r))));
    }
  });

  it("reads the data as the README describes it: 200 bundles, 199 patients", () => {
    expect(bundleNames).toHaveLength(200);
    expect(hospital).toHaveLength(1);
    const { resources, problems } = fromBundles.get(hospital[0] as string) as Read;
    expect(problems).toEqual([]);
    expect(resources).toHaveLength(102);
    expect(new Set(resources.map((r) => r.resourceType))).toEqual(new Set(["Organization"]));
  });

  it("gives a sampled bundle's Patient, Conditions, Observations and Encounters exactly as the bulk export has them", () => {
    for (const name of sample.slice(0, 5)) {
      // Prepare
      const { resources, problems } = fromBundles.get(name) as Read;
      const patient = resources.find((r) => r.resourceType === "Patient") as FhirResource;
      const ofPatient = (rs: FhirResource[]) =>
        byKey(rs.filter((r) => PER_PATIENT_TYPES.includes(r.resourceType) && patientOf(r) === patient.id));

      // Assert: both directions, so a resource missing on either side shows
      expect(problems).toEqual([]);
      expect(ofPatient(resources).length).toBeGreaterThan(10);
      expect(ofPatient(resources)).toEqual(ofPatient(fromBulk));
    }
  });

  it("leaves no urn:uuid reference, and every bundle entry (Organizations too) has an identical bulk line", () => {
    for (const [name, { resources }] of fromBundles) {
      for (const resource of resources) {
        expect(JSON.stringify(resource), name).not.toContain("urn:uuid:");
        const copies = fromBulk.filter((r) => key(r) === key(resource));
        expect(copies, `${name}: ${key(resource)}`).toContainEqual(resource);
      }
    }
    // The reason for "one of the copies": the two versions of a shared Organization.
    const organizations = fromBulk.filter((r) => r.resourceType === "Organization");
    const versions = new Map<string, Set<string>>();
    for (const r of organizations)
      versions.set(key(r), (versions.get(key(r)) ?? new Set()).add(JSON.stringify(r)));
    expect([...versions.values()].some((v) => v.size === 2)).toBe(true);
  });

  it("counts 199 Patients in the bulk export, among them the sampled bundles' patients", async () => {
    // Prepare
    const sampled = [...fromBundles.values()].flatMap(({ resources }) =>
      resources.filter((r) => r.resourceType === "Patient"),
    );

    // Execute
    const { resources, problems } = await readAll(readNdjson, dataFile(BULK, "Patient.000.ndjson.gz"));

    // Assert
    expect(problems).toEqual([]);
    expect(resources).toHaveLength(199);
    expect(new Set(resources.map((r) => r.id)).size).toBe(199);
    expect(sampled).toHaveLength(5);
    for (const patient of sampled) expect(resources).toContainEqual(patient);
  });

  it("counts 10 living patients (13 with the deceased) and no Observation file in smart-bulk-10-patients", async () => {
    // Execute
    const { resources, problems } = await readAll(readNdjson, dataFile(SMART, "Patient.000.ndjson.gz"));
    const living = resources.filter((r) => r.deceasedDateTime === undefined && r.deceasedBoolean !== true);

    // Assert
    expect(problems).toEqual([]);
    expect(resources).toHaveLength(13);
    expect(living).toHaveLength(10);
    expect(
      readdirSync(join(DATA, SMART)).filter((name) => /^(Observation|DiagnosticReport)/.test(name)),
    ).toEqual([]);
  });

  it("reports each line of the export log in smart-bulk-10-patients as no resource", async () => {
    // Execute
    const { resources, problems } = await readAll(readFhirFile, dataFile(SMART, "log.ndjson.gz"));

    // Assert
    expect(resources).toEqual([]);
    expect(problems.map((p) => [p.line, p.message.includes("not a FHIR resource")])).toEqual([
      [1, true],
      [2, true],
      [3, true],
      [4, true],
    ]);
    expectNoContent(problems, ["export-10", "kickoff", "transactionTime"]);
  });

  it("detects gzip by its magic bytes, not by the name", async () => {
    // Prepare
    const gz = bytesOf(BULK, "Patient.000.ndjson.gz");
    const gzNamedPlain = new File([gz], "patients.ndjson");
    const plainNamedGz = new File([gunzipSync(gz)], "patients.ndjson.gz");
    const bundleNamedPlain = dataFile(BUNDLES, sample[0] as string, "bundle.json");

    // Execute
    const fromGz = await readAll(readNdjson, gzNamedPlain);
    const fromPlain = await readAll(readFhirFile, plainNamedGz);
    const fromBundle = await readAll(readFhirFile, bundleNamedPlain);

    // Assert
    expect(fromGz.problems).toEqual([]);
    expect(fromGz.resources).toHaveLength(199);
    expect(fromPlain).toEqual(fromGz);
    expect(fromBundle).toEqual(fromBundles.get(sample[0] as string));
  });

  it("reports progress in compressed bytes, ending at the file's size", async () => {
    // Prepare: a Blob backed by the file on disk, streamed in chunks like a browser's File
    const file = await openAsBlob(join(DATA, BULK, "Observation.000.ndjson.gz"));
    const seen: [number, number][] = [];

    // Execute
    await readAll(readNdjson, file, { onProgress: (read, total) => seen.push([read, total]) });

    // Assert
    expect(seen.length).toBeGreaterThan(2);
    expect(seen.at(-1)).toEqual([file.size, file.size]);
    expect(seen.every(([read], i) => i === 0 || read > (seen[i - 1] as [number, number])[0])).toBe(true);
  });

  describe.each([
    ["plain", (bytes: Uint8Array<ArrayBuffer>) => bytes, ""],
    [
      "gzipped",
      (bytes: Uint8Array<ArrayBuffer>) => new Uint8Array(gzipSync(bytes)),
      " of the decompressed data",
    ],
  ])("a %s NDJSON file", (_kind, encode, offsetNote) => {
    it("cut off mid-line reports the last line as cut off, at its line and byte offset, and reads the rest", async () => {
      // Prepare: Condition lines are ASCII, so cut 100 characters into line 1000
      const all = lines(BULK, "Condition.000.ndjson.gz");
      const whole = all.slice(0, 999);
      const cut = all[999] as string;
      const text = `${whole.join("\n")}\n${cut.slice(0, 100)}`;
      const offset = byteLength(`${whole.join("\n")}\n`);

      // Execute
      const { resources, problems } = await readAll(
        readNdjson,
        new File([encode(utf8(text))], "Condition.ndjson"),
      );

      // Assert
      expect(resources).toEqual(whole.map((line) => JSON.parse(line)));
      expect(problems).toEqual([
        {
          file: "Condition.ndjson",
          line: 1000,
          byteOffset: offset,
          message:
            `Condition.ndjson, line 1000 (byte ${offset}${offsetNote}): the last line has no line break and is ` +
            "not complete JSON (unexpected end), so the file looks cut off; the line was skipped. Export or " +
            "download the file again to get it whole.",
        },
      ]);
      expectNoContent(problems, [JSON.parse(cut).id]);
    });

    it("with a broken line among CRLF and blank lines reports it at its line and byte offset (bytes, not characters)", async () => {
      // Prepare: a patient with a non-ASCII name first, so byte and character offsets differ (the bulk
      // file escapes non-ASCII as \u00e1; JSON.stringify writes it as UTF-8)
      const all = lines(BULK, "Patient.000.ndjson.gz");
      const accented = JSON.stringify(JSON.parse(all.find((line) => line.includes("\\u00")) as string));
      const [a, b, c, broken] = all.filter((line) => line !== accented);
      const before = [accented, `${a}\r`, "", `${b}\r`];
      const text = [...before, (broken as string).slice(0, 2000), c, ""].join("\n");
      const offset = byteLength(`${before.join("\n")}\n`);
      const patient = JSON.parse(broken as string) as FhirResource & { name: { family: string }[] };

      // Execute
      const { resources, problems } = await readAll(readNdjson, new File([encode(utf8(text))], "p.ndjson"));

      // Assert
      expect(offset).toBeGreaterThan(before.join("\n").length + 1);
      expect(resources).toEqual([accented, a, b, c].map((line) => JSON.parse(line as string)));
      expect(problems).toEqual([
        {
          file: "p.ndjson",
          line: 5,
          byteOffset: offset,
          message: `p.ndjson, line 5 (byte ${offset}${offsetNote}): invalid JSON (unexpected end); the line was skipped and the others are read.`,
        },
      ]);
      expectNoContent(problems, [patient.id as string, patient.name[0]?.family as string]);
    });
  });

  it("reads a gzip cut in half up to the cut and reports the damage once, without throwing", async () => {
    // Prepare
    const gz = bytesOf(BULK, "Condition.000.ndjson.gz");
    const whole = lines(BULK, "Condition.000.ndjson.gz").map((line) => JSON.parse(line));

    // Execute
    const { resources, problems } = await readAll(
      readNdjson,
      new File([gz.slice(0, gz.length / 2)], "Condition.ndjson.gz"),
    );

    // Assert
    expect(resources.length).toBeGreaterThan(100);
    expect(resources).toEqual(whole.slice(0, resources.length));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ file: "Condition.ndjson.gz", line: resources.length + 1 });
    expect(problems[0]?.message).toMatch(
      /^Condition\.ndjson\.gz: the gzip data is damaged or cut off at line \d+/,
    );
  });

  it("reports every reference to a missing urn:uuid, with entry and path, and leaves it as it is", async () => {
    // Prepare: drop one Encounter from a real bundle; its Observations, Conditions, claims refer to it
    const name = sample[1] as string;
    const bundle = JSON.parse(new TextDecoder().decode(gunzipSync(bytesOf(BUNDLES, name))));
    const index = bundle.entry.findIndex(
      (e: { resource: FhirResource }) => e.resource.resourceType === "Encounter",
    );
    const [dropped] = bundle.entry.splice(index, 1);
    const missing = dropped.fullUrl as string;
    const expected = JSON.stringify(bundle).split(`"reference":"${missing}"`).length - 1;

    // Execute
    const { resources, problems } = await readAll(readBundle, new File([JSON.stringify(bundle)], "b.json"));

    // Assert
    expect(expected).toBeGreaterThan(1);
    expect(resources).toHaveLength(bundle.entry.length);
    expect(problems).toHaveLength(expected);
    for (const problem of problems) {
      const entry = problem.entry as number;
      expect(problem.message).toMatch(
        new RegExp(
          `^b\\.json, entry\\[${entry}\\] \\("\\w+"\\): [\\w.\\[\\]]*reference refers to a urn: that`,
        ),
      );
      expect(JSON.stringify(resources[entry])).toContain(missing);
    }
    expectNoContent(problems, [missing, missing.slice("urn:uuid:".length)]);
    expect(resources.filter((r) => JSON.stringify(r).includes("urn:uuid:"))).toHaveLength(
      new Set(problems.map((p) => p.entry)).size,
    );
  });
});

describe("FHIR readers on made-up input", () => {
  const read = (reader: Reader, content: BlobPart, name = "f.ndjson", options?: ReadOptions) =>
    readAll(reader, new File([content], name), options);

  it("reports JSON lines that are no resource, by line, and reads the resources around them", async () => {
    // Prepare
    const text = [
      '{"resourceType":"Patient","id":"p1"}',
      "[1,2]",
      '{"a":1}',
      '{"resourceType":5}',
      '"Patient"',
      "null",
      '{"resourceType":""}',
      '{"resourceType":"Condition","id":"c1"}',
    ].join("\n");

    // Execute
    const { resources, problems } = await read(readNdjson, text);

    // Assert
    expect(resources.map(key)).toEqual(["Patient/p1", "Condition/c1"]);
    expect(
      problems.map((p) => [
        p.line,
        /^f\.ndjson, line \d+ \(byte \d+\): the line is JSON but not a FHIR resource \(.+\); it was skipped\.$/.test(
          p.message,
        ),
      ]),
    ).toEqual([2, 3, 4, 5, 6, 7].map((line) => [line, true]));
    expectNoContent(problems, ['"Patient"', "[1,2]", '"a"']);
  });

  it.each([
    ["XML", utf8('<?xml version="1.0"?>\n<Bundle xmlns="http://hl7.org/fhir"></Bundle>'), "looks like XML"],
    ["gzipped XML", new Uint8Array(gzipSync('<Patient xmlns="http://hl7.org/fhir"/>')), "looks like XML"],
    ["a zip", new Uint8Array([0x50, 0x4b, 0x03, 0x04, 0x14, 0, 0, 0, 8, 0]), "is a zip archive"],
    ["a JSON array", utf8('[{"resourceType":"Patient"}]'), "is a JSON array"],
    [
      "UTF-16",
      new Uint8Array([0xff, 0xfe, ...new Uint8Array(new Uint16Array([0x7b, 0x7d]).buffer)]),
      "is UTF-16",
    ],
    ["random bytes", randomBytes(4096, 7), "is not FHIR JSON"],
  ])("gives one problem for %s and reads nothing", async (_what, bytes, reason) => {
    // Execute
    const { resources, problems } = await read(readFhirFile, bytes as Uint8Array<ArrayBuffer>, "upload.bin");

    // Assert
    expect(resources).toEqual([]);
    expect(problems).toHaveLength(1);
    expect(problems[0]?.file).toBe("upload.bin");
    expect(problems[0]?.message).toMatch(
      new RegExp(`^upload\\.bin ${reason}.*\\. fedward reads FHIR JSON: NDJSON`),
    );
  });

  it("reads an empty or blank file as an empty NDJSON file, without a problem", async () => {
    expect(await read(readFhirFile, "")).toEqual({ resources: [], problems: [] });
    expect(await read(readFhirFile, "\n \r\n")).toEqual({ resources: [], problems: [] });
  });

  it("takes a pretty-printed file for a bundle and says when it holds a single resource instead", async () => {
    // Prepare
    const patient = JSON.stringify({ resourceType: "Patient", id: "x", name: [{ family: "Doe" }] }, null, 2);

    // Execute
    const { resources, problems } = await read(readFhirFile, patient, "patient.json");

    // Assert
    expect(resources).toEqual([]);
    expect(problems.map((p) => p.message)).toEqual([
      'patient.json is JSON but not a FHIR Bundle (a single "Patient" resource). fedward reads FHIR JSON: ' +
        "NDJSON files with one resource per line (a Bulk Data export, .ndjson or .ndjson.gz) and Bundle files " +
        "(.json or .json.gz).",
    ]);
  });

  it("finds a Bundle's top-level resourceType after other keys and on one line", async () => {
    // Prepare: "entry" first, with resourceTypes of its own, and the whole bundle on one line
    const bundle = {
      entry: [
        {
          fullUrl: "urn:uuid:a",
          resource: { resourceType: "Patient", id: "a", link: [{ other: { reference: "urn:uuid:a" } }] },
        },
      ],
      type: "collection",
      resourceType: "Bundle",
    };

    // Execute
    const { resources, problems } = await read(readFhirFile, JSON.stringify(bundle), "one-line.json");

    // Assert
    expect(problems).toEqual([]);
    expect(resources).toEqual([
      { resourceType: "Patient", id: "a", link: [{ other: { reference: "Patient/a" } }] },
    ]);
  });

  it("gives an id-less transaction entry its urn:uuid as id, so references to it resolve", async () => {
    // Prepare
    const bundle = {
      resourceType: "Bundle",
      type: "transaction",
      entry: [
        { fullUrl: "urn:uuid:1111", resource: { resourceType: "Patient" } },
        {
          fullUrl: "urn:uuid:2222",
          resource: { resourceType: "Condition", id: "c", subject: { reference: "urn:uuid:1111" } },
        },
        { request: { method: "DELETE", url: "Patient/9" } },
      ],
    };

    // Execute
    const { resources, problems } = await read(readBundle, JSON.stringify(bundle, null, 1), "t.json");

    // Assert
    expect(resources).toEqual([
      { resourceType: "Patient", id: "1111" },
      { resourceType: "Condition", id: "c", subject: { reference: "Patient/1111" } },
    ]);
    expect(problems).toEqual([
      { file: "t.json", entry: 2, message: "t.json, entry[2]: it has no resource; the entry was skipped." },
    ]);
  });

  it.each([
    [
      { resourceType: "Bundle", type: "history", entry: [] },
      'is a Bundle of type "history"; fedward reads transaction, batch, collection, searchset.',
    ],
    [
      { resourceType: "Bundle", type: "collection", entry: {} },
      "is a Bundle whose entry is not a list; nothing was read from it.",
    ],
  ])("reads nothing from a bundle it does not support (%#)", async (bundle, message) => {
    const { resources, problems } = await read(readBundle, JSON.stringify(bundle), "b.json");
    expect(resources).toEqual([]);
    expect(problems).toEqual([{ file: "b.json", message: `b.json ${message}` }]);
  });

  it.each([
    ['{\n "resourceType": "Bundle",\n "type": "collection",\n}', "syntax error at line 4, character 1"],
    ['{\n "resourceType": "Bundle",\n "type": secret\n}', "syntax error"],
    ['{"resourceType": "Bundle", "type": "coll', "unexpected end"],
  ])("reports invalid JSON in a bundle by place, never quoting it (%#)", async (text, fault) => {
    const { resources, problems } = await read(readBundle, text, "b.json");
    expect(resources).toEqual([]);
    expect(problems).toEqual([
      { file: "b.json", message: `b.json is not valid JSON (${fault}); nothing was read from it.` },
    ]);
  });

  it("refuses a bundle over the size limit, also when only its decompressed data is", async () => {
    // Prepare: 2,000 entries compress far below 64 KiB
    const entry = (i: number) => ({
      fullUrl: `urn:uuid:${i}`,
      resource: { resourceType: "Basic", id: `${i}` },
    });
    const bundle = JSON.stringify({
      resourceType: "Bundle",
      type: "collection",
      entry: [...Array(2000).keys()].map(entry),
    });
    const gz = new Uint8Array(gzipSync(bundle));
    const options = { maxBundleBytes: 64 * 1024 };

    // Execute
    const plain = await read(readBundle, bundle, "big.json", options);
    const zipped = await read(readBundle, gz, "big.json.gz", options);
    const under = await read(readBundle, gz, "big.json.gz", { maxBundleBytes: bundle.length });

    // Assert
    expect(bundle.length).toBeGreaterThan(64 * 1024);
    expect(gz.length).toBeLessThan(64 * 1024);
    expect(plain.resources).toEqual([]);
    expect(plain.problems.map((p) => p.message)).toEqual([
      "big.json is larger than 0.063 MiB. A Bundle is read whole, so split it, or export the data as NDJSON (Bulk Data) instead.",
    ]);
    expect(zipped.resources).toEqual([]);
    expect(zipped.problems.map((p) => p.message)).toEqual([
      "big.json.gz is larger than 0.063 MiB once decompressed. A Bundle is read whole, so split it, or export the data as NDJSON (Bulk Data) instead.",
    ]);
    expect(under.resources).toHaveLength(2000);
  });

  describe("cut into small chunks", () => {
    /** Multi-byte characters of 2, 3 and 4 bytes, so chunk edges fall inside them. */
    const expected = [...Array(500).keys()].map((i) => ({
      resourceType: "Observation",
      id: `o${i}`,
      note: [{ text: `${"é".repeat(i % 7)}温度${"😀".repeat(i % 3)} ${i}` }],
    }));
    const text = expected.map((r) => JSON.stringify(r)).join("\n");

    it.each([[[1]], [[1, 2, 3, 5, 7]], [[4096]]])(
      "gives every line, whatever the chunk sizes (%j)",
      async (sizes) => {
        const file = new ChunkedFile(utf8(text), "o.ndjson", sizes);
        expect(await readAll(readNdjson, file)).toEqual({ resources: expected, problems: [] });
      },
    );

    it("gives the same through gzip and with Windows line breaks", async () => {
      const crlf = new Uint8Array(gzipSync(`\uFEFF${text.replaceAll("\n", "\r\n")}\r\n`));
      const file = new ChunkedFile(crlf, "o.ndjson.gz", [3, 1, 11]);
      expect(await readAll(readFhirFile, file)).toEqual({ resources: expected, problems: [] });
    });

    it("skips a line over maxLineBytes unread, and bad UTF-8, with the right offsets", async () => {
      // Prepare: line 2 is longer than the limit, line 3 has a lone continuation byte
      const good = JSON.stringify(expected[1]);
      const long = JSON.stringify({ resourceType: "Binary", data: "x".repeat(5000) });
      const bytes = new Uint8Array([...utf8(`${good}\n${long}\n`), 0x7b, 0x80, 0x7d, ...utf8(`\n${good}`)]);
      const file = new ChunkedFile(bytes, "o.ndjson", [3, 1000]);

      // Execute
      const { resources, problems } = await readAll(readNdjson, file, { maxLineBytes: 4096 });

      // Assert
      expect(resources).toEqual([expected[1], expected[1]]);
      expect(problems).toEqual([
        {
          file: "o.ndjson",
          line: 2,
          byteOffset: byteLength(good) + 1,
          message: `o.ndjson, line 2 (byte ${byteLength(good) + 1}): the line is longer than 0.004 MiB and was skipped unread. NDJSON holds one resource per line; check that this is an NDJSON export.`,
        },
        {
          file: "o.ndjson",
          line: 3,
          byteOffset: byteLength(good) + long.length + 2,
          message: `o.ndjson, line 3 (byte ${byteLength(good) + long.length + 2}): the line is not valid UTF-8 text and was skipped; FHIR JSON must be saved as UTF-8.`,
        },
      ]);
    });

    it("stops at the next line when aborted, throwing the signal's reason, and releases the file", async () => {
      // Prepare
      const file = new ChunkedFile(utf8(text), "o.ndjson", [4096]);
      const controller = new AbortController();
      const reason = new Error("stopped by the user");
      const seen: FhirResource[] = [];

      // Execute
      const reading = (async () => {
        for await (const resource of readNdjson(file, () => undefined, { signal: controller.signal })) {
          seen.push(resource);
          if (seen.length === 3) controller.abort(reason);
        }
      })();

      // Assert
      await expect(reading).rejects.toBe(reason);
      expect(seen).toEqual(expected.slice(0, 3));
      expect(file.cancelled).toBe(true);
    });

    it("throws at once for a signal aborted before reading, for both readers", async () => {
      const signal = AbortSignal.abort(new Error("too late"));
      const bundle = '{"resourceType":"Bundle","type":"collection","entry":[]}';
      await expect(read(readNdjson, text, "o.ndjson", { signal })).rejects.toThrow("too late");
      await expect(read(readFhirFile, bundle, "b.json", { signal })).rejects.toThrow("too late");
    });

    it("releases the file when the caller stops early", async () => {
      const file = new ChunkedFile(utf8(text), "o.ndjson", [100]);
      for await (const _resource of readNdjson(file, () => undefined)) break;
      expect(file.cancelled).toBe(true);
    });
  });
});

/** Seeded bytes (mulberry32), so the test reads the same "random" file every run. */
function randomBytes(length: number, seed: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(length);
  let s = seed;
  for (let i = 0; i < length; i++) {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    out[i] = ((t ^ (t >>> 14)) >>> 0) & 0xff;
  }
  return out;
}

describe("readNdjson with wantType", () => {
  it("skips lines of unwanted types unparsed, and parses any line whose type is not its first key", async () => {
    // Prepare: a Claim line that is not even valid JSON, a Patient, and an Observation written with id first
    const text = [
      '{"resourceType":"Claim","id":"c1", broken',
      '{"resourceType":"Patient","id":"p1"}',
      '{"id":"o1","resourceType":"Observation"}',
      '{"resourceType":"Observation","id":"o2"}',
    ].join("\n");
    const file = new File([text], "mixed.ndjson");
    const onlyPatients = { wantType: (type: string) => type === "Patient" };

    // Execute
    const filtered = await readAll(readNdjson, file, onlyPatients);
    const all = await readAll(readNdjson, file);

    // Assert: the Claim is neither parsed nor reported; o1 cannot be judged by its first bytes, so it is read
    expect(filtered.resources.map(key)).toEqual(["Patient/p1", "Observation/o1"]);
    expect(filtered.problems).toEqual([]);
    expect(all.resources.map(key)).toEqual(["Patient/p1", "Observation/o1", "Observation/o2"]);
    expect(all.problems).toHaveLength(1);
  });
});
