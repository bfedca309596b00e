import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import type { ErrorResponse } from "../core/protocol";
import { securityHeaderLines, securityHeaders } from "./security-headers";
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

/** What a reply may echo of the URL the client sent: enough to recognise it, never 16 KiB of it. */
function shortUrl(url: string): string {
  return url.length > 120 ? `${url.slice(0, 120)}…` : url;
}

/**
 * Fastify's router refuses some URLs before any route or hook runs (frameworkErrors); these replies get
 * the security headers and a sentence here, because no onSend hook sees them.
 */
export function frameworkErrorHandler(
  error: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
): void {
  let statusCode = statusOf(error);
  let message = "The coordinator could not route this request; check the URL.";
  if (error.code === "FST_ERR_BAD_URL") {
    statusCode = 400;
    message =
      `The URL ${JSON.stringify(shortUrl(request.url))} has a %-escape that does not decode to UTF-8 text; ` +
      "encode each part of the path with encodeURIComponent.";
  } else if (error.code === "FST_ERR_MAX_PARAM_LENGTH") {
    statusCode = 414;
    message = `A part of the URL path ${JSON.stringify(shortUrl(request.url))} is longer than any id this coordinator uses.`;
  }
  if (statusCode >= 500) request.log.error({ err: error }, "router error");
  reply
    .headers(securityHeaders)
    .code(statusCode)
    .send({ statusCode, error: STATUS_CODES[statusCode] ?? "Error", message } satisfies ErrorResponse);
}

const clientErrors: Record<string, { statusCode: number; message: string }> = {
  ERR_HTTP_REQUEST_TIMEOUT: {
    statusCode: 408,
    message:
      "The request's headers or body did not arrive in time, so the coordinator closed the connection; send it again.",
  },
  HPE_HEADER_OVERFLOW: {
    statusCode: 431,
    message: "The request's headers are larger than the coordinator accepts; send fewer or shorter headers.",
  },
};

/**
 * Node's HTTP parser refuses a request before Fastify sees it (bad HTTP, oversized headers, a timeout) and
 * leaves the reply to this handler, which writes it to the socket itself: with the security headers.
 */
export function clientErrorHandler(error: Error & { code?: string }, socket: Socket): void {
  // A reset connection has nobody left to answer.
  if (error.code === "ECONNRESET" || socket.destroyed) return;
  const { statusCode, message } = clientErrors[error.code ?? ""] ?? {
    statusCode: 400,
    message: `The request is not valid HTTP/1.1 (${error.code ?? "parse error"}); the connection was closed.`,
  };
  const body = JSON.stringify({
    statusCode,
    error: STATUS_CODES[statusCode] ?? "Client Error",
    message,
  } satisfies ErrorResponse);
  // As Node does without a handler: a reply already under way cannot be followed by another one.
  const pending = (socket as Socket & { _httpMessage?: { headersSent: boolean } })._httpMessage;
  if (socket.writable && pending?.headersSent !== true) {
    socket.write(
      `HTTP/1.1 ${statusCode} ${STATUS_CODES[statusCode]}\r\nconnection: close\r\n` +
        `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
        `${securityHeaderLines}\r\n${body}`,
    );
  }
  socket.destroy(error);
}
