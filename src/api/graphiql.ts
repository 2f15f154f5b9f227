import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';
import type { GraphiQLOptions } from 'graphql-yoga';

/**
 * GraphiQL without a CDN. graphql-yoga's own page loads its scripts from
 * unpkg.com, so it is blank offline or behind a firewall. The same build ships
 * in the `@graphql-yoga/render-graphiql` package (as JavaScript strings); its
 * own renderer inlines all of it (about 9 MB) into every page, so instead the
 * page below is small and names same-origin assets, which `serveGraphiQLAsset`
 * serves from that package (loaded on first use, compressed once, cacheable).
 */

/** Where GraphiQL's scripts, styles and icon are served (GET and HEAD). */
export const GRAPHIQL_ASSET_PREFIX = '/graphiql/';

type BundleExport = 'js' | 'css' | 'editorWorkerService' | 'jsonWorker' | 'graphqlWorker' | 'favicon';

const ASSETS: Record<string, { export: BundleExport; contentType: string }> = {
  'yoga-graphiql.js': { export: 'js', contentType: 'text/javascript; charset=utf-8' },
  'graphiql.css': { export: 'css', contentType: 'text/css; charset=utf-8' },
  'editor.worker.js': { export: 'editorWorkerService', contentType: 'text/javascript; charset=utf-8' },
  'json.worker.js': { export: 'jsonWorker', contentType: 'text/javascript; charset=utf-8' },
  'graphql.worker.js': { export: 'graphqlWorker', contentType: 'text/javascript; charset=utf-8' },
  'favicon.ico': { export: 'favicon', contentType: 'image/x-icon' },
};

/** Monaco's worker labels (as graphql-yoga's page names them) and their scripts. */
const WORKERS = { editorWorkerService: 'editor.worker.js', json: 'json.worker.js', graphql: 'graphql.worker.js' };

const asset = (name: string) => `${GRAPHIQL_ASSET_PREFIX}${name}`;

/** JSON that may sit inside a <script> element: `<` escaped, so `</script>` in a title cannot end it. */
const scriptJson = (value: unknown) =>
  JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * graphql-yoga's GraphiQL page, its scripts served by keyledger itself: the
 * `renderGraphiQL` option of `createYoga`. References no other host.
 *
 * @example
 * createYoga({ graphiql: { title: 'keyledger' }, renderGraphiQL: renderLocalGraphiQL });
 */
export function renderLocalGraphiQL(options: GraphiQLOptions): string {
  const title = options.title || 'GraphiQL';
  const workers = Object.fromEntries(Object.entries(WORKERS).map(([label, file]) => [label, asset(file)]));
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>${escapeHtml(title)}</title>
    <link rel="icon" href="${asset('favicon.ico')}">
    <link rel="stylesheet" href="${asset('graphiql.css')}">
  </head>
  <body id="body" class="no-focus-outline">
    <noscript>You need to enable JavaScript to run this app.</noscript>
    <div id="root">Loading ${escapeHtml(title)}...</div>
    <script>
      const workers = ${scriptJson(workers)};
      self.MonacoEnvironment = { globalAPI: false, getWorkerUrl: (moduleId, label) => workers[label] };
    </script>
    <script src="${asset('yoga-graphiql.js')}"></script>
    <script>YogaGraphiQL.renderYogaGraphiQL(document.getElementById('root'), ${scriptJson(options)});</script>
  </body>
</html>
`;
}

interface LoadedAsset {
  body: Buffer;
  gzipped: Buffer;
  etag: string;
  contentType: string;
}

const loaded = new Map<string, Promise<LoadedAsset>>();

function loadAsset(name: string): Promise<LoadedAsset> | undefined {
  const entry = Object.hasOwn(ASSETS, name) ? ASSETS[name] : undefined;
  if (!entry) return undefined;
  let promise = loaded.get(name);
  if (!promise) {
    promise = (async () => {
      // About 9 MB of JavaScript strings: imported only when a browser asks.
      const bundle = (await import('@graphql-yoga/render-graphiql/graphiql')) as Record<BundleExport, string>;
      const text = bundle[entry.export];
      const body = entry.export === 'favicon' ? Buffer.from(text.slice(text.indexOf(',') + 1), 'base64') : Buffer.from(text, 'utf8');
      return {
        body,
        gzipped: gzipSync(body),
        etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
        contentType: entry.contentType,
      };
    })();
    promise.catch(() => loaded.delete(name));
    loaded.set(name, promise);
  }
  return promise;
}

/**
 * Answers a request under GRAPHIQL_ASSET_PREFIX: the asset (gzip when
 * accepted, revalidated by ETag), 404 for an unknown name, 405 for anything
 * but GET and HEAD.
 *
 * @example
 * if (path.startsWith(GRAPHIQL_ASSET_PREFIX)) return void serveGraphiQLAsset(path, req, res);
 */
export async function serveGraphiQLAsset(path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
    return;
  }
  const pending = loadAsset(path.slice(GRAPHIQL_ASSET_PREFIX.length));
  if (!pending) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    return;
  }
  let found: LoadedAsset;
  try {
    found = await pending;
  } catch {
    res.writeHead(500, { 'content-type': 'text/plain' }).end('GraphiQL assets unavailable (is @graphql-yoga/render-graphiql installed?)\n');
    return;
  }
  const headers = { 'content-type': found.contentType, etag: found.etag, 'cache-control': 'public, max-age=3600', vary: 'accept-encoding' };
  if (req.headers['if-none-match'] === found.etag) {
    res.writeHead(304, headers).end();
    return;
  }
  const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
  const body = gzip ? found.gzipped : found.body;
  res.writeHead(200, { ...headers, 'content-length': body.length, ...(gzip ? { 'content-encoding': 'gzip' } : {}) });
  res.end(req.method === 'HEAD' ? undefined : body);
}
