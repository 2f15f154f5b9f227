/**
 * The bench's HTTP client: one keep-alive HTTP/1.1 connection on a bare
 * socket, one request at a time, the request written in one piece. It shares
 * the two CPUs with the server it measures, and node:http's client cost about
 * as much CPU per request as the server's own HTTP layer (an Agent, a
 * ClientRequest, header objects and events per request); this one costs a
 * string concatenation and one small parser.
 *
 * It understands what a Node server answers: a status line, headers, and a
 * body sized by Content-Length or sent chunked.
 */
import { connect, type Socket } from 'node:net';

export interface LeanResponse {
  status: number;
  /** Header names in lower case; a repeated header keeps its last value. */
  headers: Map<string, string>;
  body: string;
}

const CRLF2 = Buffer.from('\r\n\r\n', 'latin1');

/**
 * An HTTP/1.1 response read from bytes as they arrive. `push` returns the
 * response once it is complete, else null; bytes after it are an error (one
 * request is in flight at a time).
 *
 * @example
 * const parser = new ResponseParser();
 * parser.push(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')); // { status: 200, headers, body: 'ok' }
 */
export class ResponseParser {
  #buffered: Buffer = Buffer.alloc(0);
  #head: { status: number; headers: Map<string, string>; bodyStart: number } | null = null;

  push(chunk: Buffer): LeanResponse | null {
    this.#buffered = this.#buffered.length === 0 ? chunk : Buffer.concat([this.#buffered, chunk]);
    if (this.#head === null) {
      const end = this.#buffered.indexOf(CRLF2);
      if (end < 0) {
        if (this.#buffered.length > 64 * 1024) throw new Error('response headers larger than 64 KiB');
        return null;
      }
      this.#head = { ...parseHead(this.#buffered.toString('latin1', 0, end)), bodyStart: end + 4 };
    }
    const { status, headers, bodyStart } = this.#head;
    const body = headers.get('transfer-encoding')?.toLowerCase() === 'chunked' ? dechunk(this.#buffered, bodyStart) : sized(this.#buffered, bodyStart, headers);
    if (body === null) return null;
    if (body.end !== this.#buffered.length) throw new Error(`${this.#buffered.length - body.end} bytes after the response`);
    this.#buffered = Buffer.alloc(0);
    this.#head = null;
    return { status, headers, body: body.text };
  }
}

function parseHead(head: string): { status: number; headers: Map<string, string> } {
  const lines = head.split('\r\n');
  const statusLine = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0]!);
  if (!statusLine) throw new Error(`not an HTTP/1.x status line: ${JSON.stringify(lines[0]!.slice(0, 80))}`);
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`malformed header line: ${JSON.stringify(line.slice(0, 80))}`);
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { status: Number(statusLine[1]), headers };
}

function sized(buffered: Buffer, start: number, headers: Map<string, string>): { text: string; end: number } | null {
  const raw = headers.get('content-length');
  if (raw === undefined || !/^\d+$/.test(raw)) throw new Error(`a response with neither Content-Length nor chunked encoding (content-length: ${raw})`);
  const end = start + Number(raw);
  return buffered.length < end ? null : { text: buffered.toString('utf8', start, end), end };
}

/** The body of a chunked response starting at `start`, or null while it is incomplete (trailers are not supported). */
function dechunk(buffered: Buffer, start: number): { text: string; end: number } | null {
  const parts: Buffer[] = [];
  let at = start;
  for (;;) {
    const lineEnd = buffered.indexOf('\r\n', at, 'latin1');
    if (lineEnd < 0) return null;
    const sizeText = buffered.toString('latin1', at, lineEnd).split(';')[0]!.trim();
    if (!/^[0-9a-fA-F]{1,8}$/.test(sizeText)) throw new Error(`malformed chunk size ${JSON.stringify(sizeText)}`);
    const size = parseInt(sizeText, 16);
    const dataStart = lineEnd + 2;
    if (buffered.length < dataStart + size + 2) return null;
    if (buffered.toString('latin1', dataStart + size, dataStart + size + 2) !== '\r\n') throw new Error('a chunk not followed by CRLF');
    if (size === 0) return { text: Buffer.concat(parts).toString('utf8'), end: dataStart + 2 };
    parts.push(buffered.subarray(dataStart, dataStart + size));
    at = dataStart + size + 2;
  }
}

/**
 * One keep-alive connection to `url`'s host and port, opened on first use and
 * again after the server closes it between requests.
 *
 * @example
 * const client = new KeepAliveClient('http://127.0.0.1:4000/', 30_000);
 * const { status, body } = await client.post('/', { 'content-type': 'application/json' }, '{}');
 * client.close();
 */
export class KeepAliveClient {
  readonly #host: string;
  readonly #port: number;
  readonly #hostHeader: string;
  readonly #timeoutMs: number;
  #socket: Socket | null = null;
  #parser = new ResponseParser();
  #pending: { resolve: (response: LeanResponse) => void; reject: (error: Error) => void; timer: NodeJS.Timeout } | null = null;

  constructor(url: string, timeoutMs: number) {
    const parsed = new URL(url);
    if (parsed.protocol !== 'http:') throw new Error(`KeepAliveClient speaks plain http, not ${parsed.protocol}`);
    this.#host = parsed.hostname;
    this.#port = Number(parsed.port || 80);
    this.#hostHeader = parsed.host;
    this.#timeoutMs = timeoutMs;
  }

  /** Sends one POST (`host` and `content-length` are added) and resolves with the whole response. */
  post(path: string, headers: Readonly<Record<string, string>>, body: string): Promise<LeanResponse> {
    if (this.#pending) return Promise.reject(new Error('a request is already in flight on this connection'));
    let head = `POST ${path} HTTP/1.1\r\nhost: ${this.#hostHeader}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n`;
    for (const name in headers) head += `${name}: ${headers[name]}\r\n`;
    const socket = this.#connected();
    return new Promise<LeanResponse>((resolve, reject) => {
      const timer = setTimeout(() => this.#fail(new Error(`no answer within ${this.#timeoutMs} ms`)), this.#timeoutMs);
      this.#pending = { resolve, reject, timer };
      socket.write(`${head}\r\n${body}`);
    });
  }

  close(): void {
    this.#socket?.destroy();
    this.#socket = null;
  }

  #connected(): Socket {
    if (this.#socket) return this.#socket;
    const socket = connect({ host: this.#host, port: this.#port, noDelay: true });
    this.#parser = new ResponseParser();
    socket.on('data', (chunk: Buffer) => {
      if (this.#socket !== socket) return;
      let response: LeanResponse | null;
      try {
        response = this.#parser.push(chunk);
      } catch (error) {
        this.#fail(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      if (response === null) return;
      const pending = this.#pending;
      if (!pending) return this.#fail(new Error('a response nobody asked for'));
      this.#pending = null;
      clearTimeout(pending.timer);
      if (response.headers.get('connection')?.toLowerCase() === 'close') this.close();
      pending.resolve(response);
    });
    // A socket already replaced (closed after an answer, or failed) has no say over the next request.
    socket.on('error', (error) => {
      if (this.#socket === socket) this.#fail(error);
    });
    socket.on('close', () => {
      if (this.#socket !== socket) return;
      this.#socket = null;
      if (this.#pending) this.#fail(new Error('the server closed the connection before answering'));
    });
    this.#socket = socket;
    return socket;
  }

  #fail(error: Error): void {
    const pending = this.#pending;
    this.#pending = null;
    this.close();
    if (pending) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
  }
}
