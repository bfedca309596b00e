import { type Remote, wrap } from "comlink";
import type { ImportWorkerApi } from "../../workers/import.worker";
import type { TrainWorkerApi } from "../../workers/train.worker";

/**
 * The page owns its workers: it starts them, terminates them on cancel and starts a fresh one after a
 * crash (the next call gets a new worker). Only the workers' *types* are imported here.
 */
export class WorkerBridge<Api> {
  private worker: Worker | undefined;
  private remote: Remote<Api> | undefined;
  private crashed: string | undefined;

  constructor(
    private readonly create: () => Worker,
    private readonly name: string,
  ) {}

  get api(): Remote<Api> {
    if (this.crashed) this.terminate();
    if (!this.remote) {
      const worker = this.create();
      worker.addEventListener("error", (e) => {
        this.crashed = e.message || `${this.name} worker crashed`;
      });
      this.worker = worker;
      this.remote = wrap<Api>(worker);
    }
    return this.remote;
  }

  terminate(): void {
    this.worker?.terminate();
    this.worker = undefined;
    this.remote = undefined;
    this.crashed = undefined;
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
