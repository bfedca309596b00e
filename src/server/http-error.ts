import { STATUS_CODES } from "node:http";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import type { ErrorResponse } from "../core/protocol";
import { StorageError } from "./storage";

/** An error whose message is meant for the client, with the HTTP status to send it under. */
export class HttpError extends Error {
  override name = "HttpError";
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

const storageStatus = { "not-found": 404, conflict: 409, invalid: 400 } as const;

/** The HTTP status an error is sent under (500 for anything not meant for the client). */
export function statusOf(error: unknown): number {
  if (error instanceof StorageError) return storageStatus[error.reason];
  const code = (error as Partial<FastifyError>).statusCode;
  return typeof code === "number" && code >= 400 && code <= 599 ? code : 500;
}

/**
 * 4xx replies carry their message (it tells the site what to fix); 5xx replies carry a fixed sentence,
 * because a stack trace or SQL error would tell a stranger about the coordinator's insides.
 */
export function handleError(error: unknown, request: FastifyRequest, reply: FastifyReply): ErrorResponse {
  const statusCode = statusOf(error);
  reply.code(statusCode);
  if (statusCode >= 500) {
    request.log.error({ err: error }, "request failed");
    return {
      statusCode,
      error: STATUS_CODES[statusCode] ?? "Server Error",
      message: "The coordinator could not handle this request; the error is in its log. Try again later.",
    };
  }
  const message =
    (error as Partial<FastifyError>).code === "FST_ERR_CTP_INVALID_MEDIA_TYPE"
      ? `${request.method} ${request.url} does not take Content-Type "${request.headers["content-type"] ?? "(none)"}": ` +
        "send JSON as application/json and model updates as application/octet-stream."
      : error instanceof Error
        ? error.message
        : String(error);
  return { statusCode, error: STATUS_CODES[statusCode] ?? "Client Error", message };
}
