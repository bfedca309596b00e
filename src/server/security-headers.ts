import { type IncomingMessage, ServerResponse } from "node:http";
import type { FastifyInstance } from "fastify";

/**
 * The Content-Security-Policy for the app the coordinator serves. The app has no inline script or style
 * attribute; the training worker's WebAssembly backend needs 'wasm-unsafe-eval' (WebAssembly compilation
 * only, not eval); its workers are module scripts from the app's own origin; the API is the same origin.
 * README ("Hosting the app elsewhere") gives the same policy for a static host.
 */
export const contentSecurityPolicy = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "worker-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data: blob:",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'self'",
].join("; ");

export const securityHeaders: Readonly<Record<string, string>> = {
  "content-security-policy": contentSecurityPolicy,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "permissions-policy": "camera=(), microphone=(), geolocation=()",
};

/** The headers as raw HTTP lines, for replies written straight to a socket (see clientErrorHandler). */
export const securityHeaderLines = Object.entries(securityHeaders)
  .map(([name, value]) => `${name}: ${value}\r\n`)
  .join("");

/** Adds the headers to every reply: pages, static files, API replies, errors and 404s. */
export function addSecurityHeaders(app: FastifyInstance): void {
  app.addHook("onSend", async (_request, reply, payload) => {
    reply.headers(securityHeaders);
    return payload;
  });
}

/**
 * The listening server's response class: every response starts with the headers, so the ones no Fastify
 * hook sees carry them too (Node's own 400 for a request without Host, Fastify's 503 while closing).
 */
export class SecureServerResponse<
  Request extends IncomingMessage = IncomingMessage,
> extends ServerResponse<Request> {
  constructor(request: Request) {
    super(request);
    for (const [name, value] of Object.entries(securityHeaders)) this.setHeader(name, value);
  }
}
