/**
 * Stopping the HTTP server in two steps, as `keyledger serve` does on SIGINT:
 * `drain` stops taking connections and waits for the requests in flight to be
 * answered (event streams excepted, and at most a grace period), then `close`
 * ends whatever is left. No database: the handlers here are stand-ins whose
 * timing the test controls.
 */
import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { KeyledgerYoga } from '../../src/api/graphql/yoga.ts';
import { startHttpServer, type RunningServer } from '../../src/api/http-server.ts';

interface Gate {
  promise: Promise<void>;
  open: () => void;
}
function gate(): Gate {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

let server: RunningServer | undefined;
const agents: Agent[] = [];
afterEach(async () => {
  for (const agent of agents.splice(0)) agent.destroy();
  await server?.close();
  server = undefined;
});

/** A server whose AWS handler answers /slow when `release` opens, streams on /stream, never answers /never, and answers the rest at once. */
async function start(release: Gate, entered: Gate): Promise<RunningServer> {
  // GraphQL is not requested here: a stand-in that fails the test if it is.
  const graphql = (() => {
    throw new Error('GraphQL was not expected');
  }) as unknown as KeyledgerYoga;
  return startHttpServer(
    {
      graphql,
      aws: async (req, res) => {
        if (req.url === '/slow') {
          entered.open();
          await release.promise;
          res.writeHead(200, { 'content-type': 'text/plain' }).end('done');
        } else if (req.url === '/stream') {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write(':\n\n');
        } else if (req.url !== '/never') {
          res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
        }
      },
    },
    { host: '127.0.0.1', port: 0 },
  );
}

interface Answer {
  response: IncomingMessage;
  body: Promise<string>;
}
function get(path: string, agent: Agent, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: Number(new URL(server!.awsUrl).port), path, agent, headers }, (response) => {
      const chunks: Buffer[] = [];
      const body = new Promise<string>((done, fail) => {
        response.on('data', (c: Buffer) => chunks.push(c));
        response.on('end', () => done(Buffer.concat(chunks).toString('utf8')));
        response.on('error', fail);
        response.on('aborted', () => fail(new Error('aborted')));
      });
      body.catch(() => {});
      resolve({ response, body });
    });
    req.on('error', reject);
    req.end();
  });
}
const keepAlive = () => {
  const agent = new Agent({ keepAlive: true });
  agents.push(agent);
  return agent;
};
const settledYet = async (p: Promise<unknown>) => {
  let settled = false;
  void p.then(() => (settled = true));
  await new Promise((r) => setTimeout(r, 50));
  return settled;
};

describe('HTTP server: drain, then close', () => {
  it('answers the requests in flight with Connection: close, refuses new connections, and leaves event streams to close', async () => {
    const release = gate();
    const entered = gate();
    server = await start(release, entered);
    const agent = keepAlive();
    const idle = await get('/fast', agent);
    expect(await idle.body).toBe('ok');
    expect(idle.response.headers.connection).toBe('keep-alive');
    const slow = get('/slow', keepAlive());
    await entered.promise;
    const stream = await get('/stream', keepAlive(), { accept: 'text/event-stream' });
    expect(stream.response.headers['content-type']).toBe('text/event-stream');
    let streamEnded = false;
    stream.response.on('close', () => (streamEnded = true));

    const drained = server.drain(10_000);
    expect(await settledYet(drained)).toBe(false);
    // The listener is closed: a new connection is refused.
    await expect(get('/fast', new Agent())).rejects.toMatchObject({ code: 'ECONNREFUSED' });

    release.open();
    const answered = await slow;
    expect(answered.response.statusCode).toBe(200);
    expect(await answered.body).toBe('done');
    expect(answered.response.headers.connection).toBe('close');
    await drained;
    // The event stream is still open after the drain; close ends it.
    expect(streamEnded).toBe(false);
    await server.close();
    server = undefined;
    await expect.poll(() => streamEnded).toBe(true);
  });

  it('waits for a request that never answers only as long as the grace period; close then cuts it off', async () => {
    server = await start(gate(), gate());
    const never = get('/never', keepAlive());
    never.catch(() => {});
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    await server.drain(300);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    await server.close();
    server = undefined;
    await expect(never).rejects.toMatchObject({ code: 'ECONNRESET' });
  });

  it('drains at once when nothing is in flight, and close is the same drain followed by the close', async () => {
    server = await start(gate(), gate());
    expect(await (await get('/fast', keepAlive())).body).toBe('ok');
    const started = Date.now();
    await server.drain(10_000);
    expect(Date.now() - started).toBeLessThan(5_000);
    await server.close();
    server = undefined;
  });
});
