import { type Remote, wrap } from "comlink";
import type { ImportWorkerApi } from "../../workers/import.worker";
import type { TrainWorkerApi } from "../../workers/train.worker";

/**
 * The page owns its workers: it starts them, terminates them on cancel and starts a fresh one after a
 * crash (the next use gets a new worker). Only the workers' *types* are imported here.
 */
export class WorkerBridge<Api> {
  private worker: Worker | undefined;
  private remote: Remote<Api> | undefined;
  /** Rejects when the current worker dies: a call in flight on a dead worker would never settle. */
  private died: Promise<never> = new Promise<never>(() => {});
  private dead = false;

  constructor(
    private readonly create: () => Worker,
    private readonly name: string,
  ) {}

  get api(): Remote<Api> {
    if (this.dead) this.terminate();
    if (!this.remote) {
      const worker = this.create();
      this.died = new Promise<never>((_, reject) => {
        const fail = (detail: string) => {
          this.dead = true;
          reject(
            new Error(
              `The ${this.name} worker stopped (${detail}). Try again; reload the page if it repeats.`,
            ),
          );
        };
        worker.addEventListener("error", (e) => fail(e.message || "it crashed or could not load"));
        worker.addEventListener("messageerror", () => fail("a message could not be read"));
      });
      this.died.catch(() => {});
      this.worker = worker;
      this.remote = wrap<Api>(worker);
    }
    return this.remote;
  }

  /** The call's result, or the worker's death, whichever comes first. */
  guard<T>(call: Promise<T>): Promise<T> {
    return Promise.race([call, this.died]);
  }

  terminate(): void {
    this.worker?.terminate();
    this.worker = undefined;
    this.remote = undefined;
    this.dead = false;
    this.died = new Promise<never>(() => {});
  }
}

export function trainBridge(): WorkerBridge<TrainWorkerApi> {
  return new WorkerBridge<TrainWorkerApi>(
    () =>
      new Worker(new URL("../../workers/train.worker.ts", import.meta.url), {
        type: "module",
        name: "train",
      }),
    "training",
  );
}

export function importBridge(): WorkerBridge<ImportWorkerApi> {
  return new WorkerBridge<ImportWorkerApi>(
    () =>
      new Worker(new URL("../../workers/import.worker.ts", import.meta.url), {
        type: "module",
        name: "import",
      }),
    "import",
  );
}
