import { expose } from "comlink";
import { hashFiles } from "./import/hash-file";

/**
 * SHA-256 of an import's files for its manifest, in a worker of its own that the import worker starts, so
 * hashing runs on another core while the import worker parses (hashing inline cost a tenth of a FHIR
 * import). It reads the same File objects; nothing else crosses.
 */
const api = {
  hashFiles(files: Blob[], onProgress?: (bytesRead: number) => void): Promise<string[]> {
    return hashFiles(files, onProgress);
  },
};

export type HashWorkerApi = typeof api;
expose(api);
