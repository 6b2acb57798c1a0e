/**
 * Requests Node's HTTP parser refuses before any app sees them (headers or a
 * URL past the 16 KiB cap, malformed request lines, a request timeout) get
 * the same JSON error body as every other refusal, `{"error": {"code",
 * "message"}}`, instead of Node's bare status line: clients and scripts read
 * one shape of error. Like Node's own default, an answer is written only when
 * nothing was written on the connection yet (a refusal in the middle of a
 * keep-alive exchange could not be told apart from the previous response),
 * and the connection is closed after it.
 */
import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';

const ANSWERS: Record<string, [status: number, reason: string, code: string, message: string]> = {
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large', 'too_large', 'request headers (URL included) are larger than 16 KiB'],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [413, 'Payload Too Large', 'too_large', 'chunk extensions are too large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request Timeout', 'bad_request', 'the request did not arrive in time'],
};
const MALFORMED: [number, string, string, string] = [400, 'Bad Request', 'bad_request', 'malformed HTTP request'];

export function answerClientErrors(server: Server): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex & { bytesWritten?: number }) => {
    if (err.code === 'ECONNRESET' || !socket.writable || (socket.bytesWritten ?? 0) > 0) {
      socket.destroy();
      return;
    }
    const [status, reason, code, message] = ANSWERS[err.code ?? ''] ?? MALFORMED;
    const body = JSON.stringify({ error: { code, message } });
    socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`, () => socket.destroy());
  });
}
