import { connect } from "node:net";

export interface RawReply {
  /** The first status line's code, or 0 when nothing came back. */
  status: number;
  /** The first response's headers, names in lowercase. */
  headers: Record<string, string>;
  body: string;
  /** Everything that came back, as latin1 text. */
  text: string;
  /** Whether the server closed the connection before `waitMs`. */
  closed: boolean;
  elapsedMs: number;
}

/**
 * Writes `chunks` to a fresh connection to 127.0.0.1:`port` as they are (no HTTP client to fix them up),
 * then reads until a whole response with a Content-Length has come (unless `untilClose`), the server
 * closes the connection, or `waitMs` pass.
 */
export function rawExchange(
  port: number,
  chunks: (string | Buffer)[],
  waitMs: number,
  untilClose = false,
): Promise<RawReply> {
  return new Promise((resolve) => {
    const started = performance.now();
    const received: Buffer[] = [];
    const socket = connect({ port, host: "127.0.0.1" });
    let settled = false;
    const finish = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(parseReply(Buffer.concat(received).toString("latin1"), closed, performance.now() - started));
    };
    const timer = setTimeout(() => finish(false), waitMs);
    socket.on("connect", () => {
      for (const chunk of chunks) socket.write(chunk);
    });
    socket.on("data", (data) => {
      received.push(data);
      if (!untilClose && isComplete(Buffer.concat(received).toString("latin1"))) finish(false);
    });
    // A reset after the reply (the server destroys the socket) still counts as closed.
    socket.on("error", () => finish(true));
    socket.on("close", () => finish(true));
  });
}

function parseReply(received: string, closed: boolean, elapsedMs: number): RawReply {
  // Interim 1xx replies (100 Continue) come before the real one and carry no headers worth checking.
  const text = received.replace(/^(HTTP\/1\.[01] 1\d\d[^\r]*\r\n(?:[^\r]+\r\n)*\r\n)+/, "");
  const end = text.indexOf("\r\n\r\n");
  const head = end === -1 ? text : text.slice(0, end);
  const [statusLine = "", ...lines] = head.split("\r\n");
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
  return { status, headers, body: end === -1 ? "" : text.slice(end + 4), text: received, closed, elapsedMs };
}

function isComplete(text: string): boolean {
  const reply = parseReply(text, false, 0);
  const length = Number(reply.headers["content-length"]);
  return reply.status !== 0 && Number.isInteger(length) && Buffer.byteLength(reply.body, "latin1") >= length;
}
