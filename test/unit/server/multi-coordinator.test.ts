import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { paramCount, parsePlan } from "../../../src/core/plan";
import { apiPaths, type EnrollResponse, type FederationState } from "../../../src/core/protocol";
import { decodeVector, encodeVector, WireKind } from "../../../src/core/wire";
import { type CoordinatorProcess, startCoordinatorProcess } from "../../support/coordinator-process";
import { startTestPostgres, type TestPostgres } from "../../support/postgres";

/**
 * Scaling out: several coordinator processes on one PostgreSQL serve one federation, every request may go
 * to any of them, and one dying with SIGKILL in the middle of a round (uploads in flight) loses nothing
 * it acknowledged and counts nothing twice. Only the HTTP API is used, so this holds whatever the round
 * logic inside looks like.
 */
const SITES = 8;
const ROUNDS = 2;
// One-hot deltas of size STEP * SITES: the unweighted mean moves a site's own weight by exactly STEP
// (a power of two, so float32 and float64 arithmetic agree), and by 0 or 2 * STEP if it was lost or
// counted twice.
const STEP = 2 ** -8;

/** Site `site`'s weight in round `round`: a different one for every site and round. */
const weightOf = (site: number, round: number) => (round - 1) * SITES + site;

interface Upload {
  status: number;
  message?: string;
}

/** POST an update with node:http, so the caller learns when the whole body has been handed to the socket. */
function startUpload(base: string, site: EnrollResponse, round: number, body: Uint8Array) {
  let sent!: () => void;
  const bodySent = new Promise<void>((done) => {
    sent = done;
  });
  const reply = new Promise<Upload | Error>((done) => {
    const req = request(`${base}${apiPaths.update(site.federationId, round)}`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${site.token}`,
        "content-type": "application/octet-stream",
        "content-length": body.byteLength,
      },
    });
    req.on("response", (response) => {
      let text = "";
      response.on("data", (chunk: Buffer) => {
        text += chunk.toString();
      });
      response.on("end", () => {
        const status = response.statusCode ?? 0;
        done({ status, message: (JSON.parse(text) as { message?: string }).message });
      });
      response.on("error", done);
    });
    req.on("error", (error) => {
      sent();
      done(error);
    });
    req.end(body, sent);
  });
  return { bodySent, reply };
}

describe("two coordinator processes on one PostgreSQL", () => {
  let cluster: TestPostgres;
  let dir: string;
  const processes: CoordinatorProcess[] = [];

  beforeAll(async () => {
    cluster = await startTestPostgres();
    dir = await mkdtemp(join(tmpdir(), "fedward-multi-"));
  }, 120_000);
  afterAll(async () => {
    for (const p of processes) await p.kill();
    await cluster?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it("serve one federation; one killed with SIGKILL mid-round loses no acknowledged update and counts none twice", async () => {
    // Prepare: the demo plan for 8 sites that all report every round; two coordinators on one database.
    const plan = parsePlan(
      {
        ...JSON.parse(readFileSync(resolve("public/demo/wdbc-plan.json"), "utf8")),
        minSites: SITES,
        rounds: ROUNDS,
      },
      "multi-coordinator plan",
    );
    const weights = paramCount(plan);
    expect(weights).toBeGreaterThanOrEqual(SITES * ROUNDS);
    const planPath = join(dir, "plan.json");
    await writeFile(planPath, JSON.stringify(plan));
    const env = {
      DATABASE_URL: await cluster.createDatabase("fedward_multi"),
      DEMO_PLAN: planPath,
      DEMO_SITES: String(SITES),
      APP_DIR: join(dir, "no-dist"),
    };
    const start = async () => {
      const started = await startCoordinatorProcess(env);
      processes.push(started);
      return started;
    };
    // One after the other: the first start makes the demo federation, the second finds it.
    const a = await start();
    const b = await start();
    expect(a.invites).toHaveLength(SITES);
    expect(b.invites).toEqual(a.invites);
    expect(b.adminToken).toBeUndefined();

    const json = async <T>(response: Response): Promise<T> => {
      expect(response.status, await response.clone().text()).toBeLessThan(300);
      return (await response.json()) as T;
    };
    const get = (base: string, site: EnrollResponse, path: string) =>
      fetch(`${base}${path}`, { headers: { authorization: `Bearer ${site.token}` } });
    const state = async (base: string, site: EnrollResponse) =>
      json<FederationState>(await get(base, site, apiPaths.state(site.federationId)));
    const model = async (base: string, site: EnrollResponse, version: number) => {
      const response = await get(base, site, apiPaths.model(site.federationId, version));
      expect(response.status).toBe(200);
      const bytes = new Uint8Array(await response.arrayBuffer());
      return decodeVector(bytes, { kind: WireKind.model, count: weights }).values;
    };
    const body = (site: number, round: number) => {
      const values = new Float32Array(weights);
      values[weightOf(site, round)] = STEP * SITES;
      return encodeVector({ kind: WireKind.update, round, numExamples: 10, values });
    };

    // Sites enrol half on each coordinator.
    let coordinators = [a, b];
    const sites: EnrollResponse[] = [];
    for (let i = 0; i < SITES; i++) {
      const response = await fetch(`${coordinators[i % 2]?.url}${apiPaths.enroll}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ inviteCode: a.invites[i]?.code }),
      });
      sites.push(await json<EnrollResponse>(response));
    }
    const via = (i: number) => coordinators[i % 2]?.url as string;
    const site = (i: number) => sites[i] as EnrollResponse;
    let expected = await model(a.url, site(0), 0);
    expect(await model(b.url, site(1), 0)).toEqual(expected);

    for (let round = 1; round <= ROUNDS; round++) {
      // Round 1 loses b, round 2 loses a; the survivor takes the dead one's sites.
      const victim = round === 1 ? 1 : 0;
      const victimUrl = coordinators[victim]?.url as string;
      const survivorUrl = coordinators[1 - victim]?.url as string;
      for (let i = 0; i < SITES; i++) {
        expect(await state(via(i), site(i))).toMatchObject({
          round,
          modelVersion: round - 1,
          status: "training",
        });
        expect(await model(via(i), site(i), round - 1)).toEqual(expected);
      }

      // Execute: half the sites upload, each to its own coordinator; both see the same round.
      for (let i = 0; i < SITES / 2; i++) {
        const reply = await startUpload(via(i), site(i), round, body(i, round)).reply;
        expect(reply).toMatchObject({ status: 202 });
      }
      for (const c of coordinators) {
        expect(await state(c.url, site(0))).toMatchObject({ round, updatesThisRound: SITES / 2 });
      }
      // The victim's other two sites upload at once; it is killed once it has acknowledged the first
      // and the second's body is sent (that one is then lost before its transaction or after its commit).
      const inFlight = [...Array(SITES).keys()].filter((i) => i >= SITES / 2 && i % 2 === victim);
      const uploads = inFlight.map((i) => startUpload(victimUrl, site(i), round, body(i, round)));
      const [acknowledged, cutOff] = uploads as [(typeof uploads)[0], (typeof uploads)[0]];
      expect(await acknowledged.reply).toMatchObject({ status: 202 });
      await cutOff.bodySent;
      await coordinators[victim]?.kill();
      const replies = await Promise.all(uploads.map((u) => u.reply));

      // Each site sends again to the survivor, as after a lost reply: a repeat of an acknowledged
      // update is refused (not counted twice); the cut-off one is accepted now or refused as a repeat.
      for (const [k, i] of inFlight.entries()) {
        const first = replies[k] as Upload | Error;
        const retry = await startUpload(survivorUrl, site(i), round, body(i, round)).reply;
        const repeat = { status: 409, message: expect.stringMatching(/already uploaded/) };
        if (first instanceof Error) {
          // Cut off before its commit (accepted now) or after it (a repeat); anything else is a bug.
          expect(retry).toMatchObject((retry as Upload).status === 202 ? { status: 202 } : repeat);
        } else {
          expect(first.status).toBe(202);
          expect(retry).toMatchObject(repeat);
        }
      }
      for (const i of [...Array(SITES).keys()].filter((i) => i >= SITES / 2 && i % 2 !== victim)) {
        expect(await startUpload(survivorUrl, site(i), round, body(i, round)).reply).toMatchObject({
          status: 202,
        });
      }

      // Assert: the round closed with every site's delta exactly once.
      const next = Float32Array.from(expected);
      for (let i = 0; i < SITES; i++) {
        const w = weightOf(i, round);
        next[w] = (next[w] as number) + STEP;
      }
      expected = next;
      expect(await state(survivorUrl, site(0))).toMatchObject(
        round < ROUNDS ? { round: round + 1, updatesThisRound: 0 } : { status: "done" },
      );
      expect(await model(survivorUrl, site(1), round)).toEqual(expected);

      // The dead coordinator is replaced by a new process on the same database.
      const replacement = await start();
      expect(replacement.invites).toEqual([]);
      coordinators =
        victim === 1
          ? [coordinators[0] as CoordinatorProcess, replacement]
          : [replacement, coordinators[1] as CoordinatorProcess];
      expect(await model(replacement.url, site(victim), round)).toEqual(expected);
    }

    const final = await get(
      coordinators[0]?.url as string,
      site(0),
      apiPaths.finalWeights(site(0).federationId),
    );
    expect(final.status).toBe(200);
    expect(new Float32Array(await final.arrayBuffer())).toEqual(expected);
    for (const c of coordinators) expect(await c.stop()).toBe(0);
  }, 180_000);
});
