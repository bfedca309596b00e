/** Reading an export file as bytes, the same way for every importer (FHIR NDJSON and Bundles, OMOP CSV). */

/** Whether the file is gzip, told by its magic bytes (1f 8b), not by its name. */
export async function isGzip(file: Blob): Promise<boolean> {
  const magic = new Uint8Array(await file.slice(0, 2).arrayBuffer());
  return magic[0] === 0x1f && magic[1] === 0x8b;
}

/** The file's bytes, counted for progress before decompression so the count ends at the file's size. */
export function fileBytes(
  file: Blob,
  gzip: boolean,
  onProgress?: (bytesRead: number, totalBytes: number) => void,
): ReadableStream<Uint8Array> {
  let bytesRead = 0;
  const counted = file.stream().pipeThrough(
    new TransformStream<Uint8Array<ArrayBuffer>, Uint8Array<ArrayBuffer>>({
      transform(chunk, controller) {
        bytesRead += chunk.byteLength;
        onProgress?.(bytesRead, file.size);
        controller.enqueue(chunk);
      },
    }),
  );
  return gzip ? counted.pipeThrough(new DecompressionStream("gzip")) : counted;
}
