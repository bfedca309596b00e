import { proxy, releaseProxy, wrap } from "comlink";
import type { HashWorkerApi } from "../hash.worker";
import { hashFiles } from "./hash-file";

export interface Hashing {
  /** The files' SHA-256s in order; rejects if a file could not be read. */
  done: Promise<string[]>;
  /** Bytes hashed so far over all files. */
  bytesHashed(): number;
}

/**
 * Starts hashing `files` beside the import: in a nested worker where the browser offers one (a dedicated
 * worker may start workers; the import worker's are ended with it when the page cancels), else inline.
 */
export function hashInBackground(files: Blob[]): Hashing {
  let hashed = 0;
  const onProgress = (bytes: number) => {
    hashed = bytes;
  };
  if (typeof Worker !== "function") {
    return { done: hashFiles(files, onProgress), bytesHashed: () => hashed };
  }
  const worker = new Worker(new URL("../hash.worker.ts", import.meta.url), {
    type: "module",
    name: "fedward-hash",
  });
  const remote = wrap<HashWorkerApi>(worker);
  const failed = new Promise<never>((_, reject) => {
    worker.addEventListener("error", (event) => {
      reject(new Error(`The hashing worker failed to start or crashed: ${event.message || "no message"}`));
    });
  });
  const done = Promise.race([remote.hashFiles(files, proxy(onProgress)), failed]).finally(() => {
    remote[releaseProxy]();
    worker.terminate();
  });
  // Observed so that an import which fails first does not leave an unhandled rejection behind.
  done.catch(() => undefined);
  return { done, bytesHashed: () => hashed };
}
