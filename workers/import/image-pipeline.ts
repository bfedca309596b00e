import { configureDicomCodecs } from "./dicom/codecs";
import { dicomWasmUrls } from "./dicom/wasm-urls";

/**
 * The image import's code, loaded by the import worker on first use (import("./image-pipeline")) so that
 * the DICOM parser and the codec loaders stay out of CSV and FHIR imports. The codecs' .wasm files are
 * served by the app itself (Vite emits them next to the worker), never fetched from elsewhere.
 */
configureDicomCodecs({ wasm: dicomWasmUrls });

export { importImages } from "./image-import";
export { readImageLabels } from "./image-labels";
