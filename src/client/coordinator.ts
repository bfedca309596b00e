import type {
  EnrollResponse,
  FederationState,
  MetricsReport,
  MetricsResponse,
  UploadResponse,
} from "../core/protocol";
import { apiPaths } from "../core/protocol";
import { decodeVector, WireKind } from "../core/wire";

/**
 * Every request the site makes goes through here, to the one coordinator named in the enrollment, so the
 * clinician (and the audit log on the page) can see each of them.
 */

/** "input": the request or file is wrong; "retry": network or server trouble; "bug": should not happen. */
export type ErrorKind = "input" | "retry" | "bug";

const REQUEST_TIMEOUT_MS = 60_000;

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
    /** Leaving aborts requests in flight; each request also gives up after REQUEST_TIMEOUT_MS. */
    private readonly signal?: AbortSignal,
  ) {}

  /** The same client, with requests tied to a run's signal. */
  withSignal(signal: AbortSignal): CoordinatorClient {
    return new CoordinatorClient(this.baseUrl, this.token, this.audit, signal);
  }

  private async request(method: string, path: string, body?: Uint8Array | string, type?: string) {
    const url = new URL(path, this.baseUrl).toString();
    const headers: Record<string, string> = {};
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (type) headers["content-type"] = type;
    const sent = typeof body === "string" ? new TextEncoder().encode(body).length : (body?.length ?? 0);
    let res: Response;
    try {
      const timeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
      const signal = this.signal ? AbortSignal.any([this.signal, timeout]) : timeout;
      res = await fetch(url, {
        method,
        headers,
        body: body as BodyInit | undefined,
        cache: "no-store",
        signal,
      });
    } catch (e) {
      if (this.signal?.aborted) throw this.signal.reason;
      // The body may have left before the connection failed: log it as sent.
      this.audit({ at: Date.now(), method, url, status: 0, bytesSent: sent, bytesReceived: 0 });
      throw new CoordinatorError(
        `The coordinator at ${this.baseUrl} cannot be reached (${(e as Error).message}). Check the network and try again.`,
        0,
        "retry",
      );
    }
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await res.arrayBuffer());
    } catch (e) {
      if (this.signal?.aborted) throw this.signal.reason;
      throw new CoordinatorError(
        `The answer from ${this.baseUrl} was cut off (${(e as Error).message}). Try again.`,
        0,
        "retry",
      );
    }
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

  /** `receiptFor`: the round whose upload receipt the state's myUpload answers (default: the latest). */
  state(federationId: string, receiptFor?: number): Promise<FederationState> {
    return this.json("GET", apiPaths.state(federationId, receiptFor));
  }

  async model(federationId: string, version: number, count: number): Promise<Float32Array> {
    const path = apiPaths.model(federationId, version);
    const bytes = await this.request("GET", path);
    let v: ReturnType<typeof decodeVector>;
    try {
      v = decodeVector(bytes, { kind: WireKind.model, count });
    } catch (e) {
      throw new CoordinatorError(
        `GET ${path} returned a model this site cannot use (${(e as Error).message}). ` +
          "The coordinator may run another plan than the one approved here: ask the federation's admin.",
        200,
        "input",
      );
    }
    if (v.round !== version) {
      throw new CoordinatorError(`GET ${path} returned model version ${v.round}; this is a bug.`, 200, "bug");
    }
    return v.values;
  }

  upload(federationId: string, round: number, body: Uint8Array): Promise<UploadResponse> {
    return this.request("POST", apiPaths.update(federationId, round), body, "application/octet-stream").then(
      (b) => JSON.parse(new TextDecoder().decode(b)) as UploadResponse,
    );
  }

  /** Only under a plan with evaluation.reportMetrics, which the site approved. */
  reportMetrics(federationId: string, report: MetricsReport): Promise<MetricsResponse> {
    return this.json("POST", apiPaths.metrics(federationId), report);
  }

  finalModelJson(federationId: string): Promise<Uint8Array> {
    return this.request("GET", apiPaths.finalModelJson(federationId));
  }

  finalWeights(federationId: string): Promise<Uint8Array> {
    return this.request("GET", apiPaths.finalWeights(federationId));
  }
}
