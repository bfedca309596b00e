import { Sha256, sha256Hex } from "../../src/core/sha256";

/** Files up to this size are hashed whole with WebCrypto; larger ones stream through the incremental hash. */
const WHOLE_HASH_BYTES = 8 << 20;

/**
 * The file's SHA-256, streamed (a multi-gigabyte export never sits in memory), so the manifest says which
 * file a dataset came from and a clinician can match it with the export they were given. `onProgress`
 * gets the bytes hashed so far, every 8 MiB and at the end.
 */
export async function hashFile(file: Blob, onProgress?: (bytesRead: number) => void): Promise<string> {
  // WebCrypto is about ten times faster than the incremental hash but takes the input whole: used for files
  // up to WHOLE_HASH_BYTES, so memory stays bounded by that, not by the export.
  if (file.size <= WHOLE_HASH_BYTES) {
    const hex = await sha256Hex(new Uint8Array(await file.arrayBuffer()));
    onProgress?.(file.size);
    return hex;
  }
  const sha = new Sha256();
  const reader = file.stream().getReader();
  let read = 0;
  let reported = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    sha.update(value);
    read += value.length;
    if (read - reported >= 8 << 20) {
      onProgress?.(read);
      reported = read;
    }
  }
  onProgress?.(read);
  return sha.digestHex();
}

/** Hashes the files one after another; `onProgress` gets the bytes hashed over all of them. */
export async function hashFiles(files: Blob[], onProgress?: (bytesRead: number) => void): Promise<string[]> {
  const hashes: string[] = [];
  let before = 0;
  for (const file of files) {
    hashes.push(await hashFile(file, (read) => onProgress?.(before + read)));
    before += file.size;
  }
  return hashes;
}
