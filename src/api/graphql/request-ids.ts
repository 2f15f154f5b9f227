import type { ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { GraphQLContext } from './builder.ts';
import type { ServerContext } from './yoga.ts';

/** The audit records one GraphQL request wrote: by the response path of the field that made each, and those of no field. */
export interface RecordedRequests {
  readonly byPath: Map<string, string>;
  readonly unplaced: Set<string>;
}

export function recordedRequestsOf(recorded: WeakMap<Request, RecordedRequests>, request: Request): RecordedRequests {
  let requests = recorded.get(request);
  if (!requests) {
    requests = { byPath: new Map(), unplaced: new Set() };
    recorded.set(request, requests);
  }
  return requests;
}

/**
 * Every answer names the audit records its request wrote, as AWS's answers
 * carry `x-amzn-RequestId`: the same ids `auditEvents` shows. Each field that
 * ran a recorded request is in `extensions.requestIds` under its response path
 * (`encrypt`, an alias, `auditEvents.edges.0.node.proof`), with the id of the
 * record actually written (a throttled field carries its window's record, an
 * error its own `extensions.requestId`); a request refused before any field ran
 * (authentication, a document that does not validate) has its record's id on
 * the error. `extensions.requestId` is set when the answer names exactly one
 * record, and the `x-amzn-RequestId` header lists every one, in the order they
 * were made, separated by commas. An answer that wrote no record (a body that
 * is not JSON, a batch) has neither. Introspection and a document whose
 * every field was skipped are recorded by authenticationPlugin.
 */
export function requestIdPlugin(recorded: WeakMap<Request, RecordedRequests>): Plugin<GraphQLContext, ServerContext> {
  return {
    onResultProcess({ request, result, setResult }) {
      // A subscription's stream (or a batch, refused earlier) has no one result to extend: the header still names its record.
      if (Array.isArray(result) || !isExecutionResult(result)) return;
      const requests = recordedRequestsOf(recorded, request);
      for (const error of result.errors ?? []) {
        const requestId = error.extensions?.['requestId'];
        if (typeof requestId !== 'string') continue;
        if (error.path) requests.byPath.set(error.path.join('.'), requestId);
        else requests.unplaced.add(requestId);
      }
      const ids = recordedIds(requests);
      if (ids.length === 0) return;
      setResult({
        ...result,
        extensions: {
          ...result.extensions,
          ...(ids.length === 1 ? { requestId: ids[0] } : {}),
          ...(requests.byPath.size > 0 ? { requestIds: Object.fromEntries(requests.byPath) } : {}),
        },
      });
    },
    onResponse({ request, response }) {
      const requests = recorded.get(request);
      const ids = requests ? recordedIds(requests) : [];
      if (ids.length > 0) response.headers.set('x-amzn-RequestId', ids.join(', '));
    },
  };
}

function recordedIds(requests: RecordedRequests): string[] {
  return [...new Set([...requests.unplaced, ...requests.byPath.values()])];
}

/** A single result (not a subscription's stream). */
export function isExecutionResult(value: unknown): value is ExecutionResult {
  return typeof value === 'object' && value !== null && !(Symbol.asyncIterator in value);
}
