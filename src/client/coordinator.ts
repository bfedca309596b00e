import type { EnrollResponse, FederationState, UploadResponse } from "../core/protocol";
import { apiPaths } from "../core/protocol";
import { decodeVector, WireKind } from "../core/wire";

/**
 * Every request the site makes goes through here, to the one coordinator named in the enrollment, so the
 * clinician (and the audit log on the page) can see each of them.
 */

/** "input": the request or file is wrong; "retry": network or server trouble; "bug": should not happen. */
export type ErrorKind = "input" | "retry" | "bug";

export class CoordinatorError extends Error {
  override name = "CoordinatorError";
  constructor(
    message: string,
    readonly status: number,
    readonly kind: ErrorKind,
  ) {
    super(message);
  }
}

export interface AuditEntry {
  at: number;
  method: string;
  url: string;
  status: number;
  bytesSent: number;
  bytesReceived: number;
}

export class CoordinatorClient {
  constructor(
    readonly baseUrl: string,
    private readonly token?: string,
    private readonly audit: (e: AuditEntry) => void = () => {},
  ) {}

  private async request(method: string, path: string, body?: Uint8Array | string, type?: string) {
    const url = new URL(path, this.baseUrl).toString();
    const headers: Record<string, string> = {};
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (type) headers["content-type"] = type;
    const sent = typeof body === "string" ? new TextEncoder().encode(body).length : (body?.length ?? 0);
    let res: Response;
    try {
      res = await fetch(url, { method, headers, body: body as BodyInit | undefined, cache: "no-store" });
    } catch (e) {
      // The body may have left before the connection failed: log it as sent.
      this.audit({ at: Date.now(), method, url, status: 0, bytesSent: sent, bytesReceived: 0 });
      throw new CoordinatorError(
        `The coordinator at ${this.baseUrl} cannot be reached (${(e as Error).message}). Check the network and try again.`,
        0,
        "retry",
      );
    }
    const bytes = new Uint8Array(await res.arrayBuffer());
    this.audit({
      at: Date.now(),
      method,
      url,
      status: res.status,
      bytesSent: sent,
      bytesReceived: bytes.length,
    });
    if (!res.ok) {
      let message = `${method} ${path} answered HTTP ${res.status}`;
      try {
        const parsed = JSON.parse(new TextDecoder().decode(bytes)) as { message?: string };
        if (parsed.message) message = parsed.message;
      } catch {
        // not JSON: keep the status line
      }
      const kind: ErrorKind = res.status >= 500 || res.status === 429 ? "retry" : "input";
      throw new CoordinatorError(message, res.status, kind);
    }
    return bytes;
  }

  private async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const bytes = await this.request(
      method,
      path,
      body === undefined ? undefined : JSON.stringify(body),
      body === undefined ? undefined : "application/json",
    );
    return JSON.parse(new TextDecoder().decode(bytes)) as T;
  }

  enroll(inviteCode: string): Promise<EnrollResponse> {
    return this.json("POST", apiPaths.enroll, { inviteCode });
  }

  state(federationId: string): Promise<FederationState> {
    return this.json("GET", apiPaths.state(federationId));
  }

  async model(federationId: string, version: number, count: number): Promise<Float32Array> {
    const bytes = await this.request("GET", apiPaths.model(federationId, version));
    const v = decodeVector(bytes, { kind: WireKind.model, count });
    if (v.round !== version) {
      throw new CoordinatorError(`Asked for model version ${version}, received ${v.round}.`, 200, "bug");
    }
    return v.values;
  }

  upload(federationId: string, round: number, body: Uint8Array): Promise<UploadResponse> {
    return this.request("POST", apiPaths.update(federationId, round), body, "application/octet-stream").then(
      (b) => JSON.parse(new TextDecoder().decode(b)) as UploadResponse,
    );
  }

  finalModelJson(federationId: string): Promise<Uint8Array> {
    return this.request("GET", apiPaths.finalModelJson(federationId));
  }

  finalWeights(federationId: string): Promise<Uint8Array> {
    return this.request("GET", apiPaths.finalWeights(federationId));
  }
}
