import type { IncomingMessage } from 'node:http';
import { GraphQLError, responsePathAsArray } from 'graphql';
import { createGraphQLError, createYoga, type YogaServerInstance } from 'graphql-yoga';
import type { Keyledger } from '../../app.ts';
import { KmsError } from '../../domain/errors.ts';
import { renderLocalGraphiQL } from '../graphiql.ts';
import { sourceIpOf } from '../source-ip.ts';
import type { GraphQLContext } from './builder.ts';
import { authenticationPlugin, type Authenticated } from './request-authentication.ts';
import { recordedOperationsLimit } from './recorded-operations.ts';
import { recordedRequestsOf, requestIdPlugin, type RecordedRequests } from './request-ids.ts';
import { bodyLimitPlugin, documentLimits, jsonParamsPlugin } from './request-limits.ts';
import { keyledgerSchema } from './schema.ts';
import { uuidV7 } from '../../domain/uuid-v7.ts';

export interface ServerContext {
  req?: IncomingMessage;
}

export type KeyledgerYoga = YogaServerInstance<ServerContext, GraphQLContext>;

/**
 * The GraphQL endpoint (graphql-yoga + the Pothos schema). Transport only: it
 * authenticates, maps errors to AWS names, and calls the services. Its plugins
 * live beside it: request-limits.ts (body size, JSON decoding, document
 * limits), recorded-operations.ts (the records one document may write),
 * request-authentication.ts (who is calling, and the record of a document
 * that never reached an operation) and request-ids.ts (the audit records an
 * answer names).
 *
 * @example
 * const yoga = createGraphQLHandler(app);
 * const res = await yoga.fetch('http://localhost/graphql', { method: 'POST', headers, body });
 */
export function createGraphQLHandler(app: Keyledger): KeyledgerYoga {
  const callers = new WeakMap<Request, Authenticated>();
  const recorded = new WeakMap<Request, RecordedRequests>();
  return createYoga<ServerContext, GraphQLContext>({
    schema: keyledgerSchema(),
    graphqlEndpoint: '/graphql',
    landingPage: false,
    logging: false,
    // No uploads here; and multipart's `operations` field would be decoded with JSON.parse (see jsonParamsPlugin).
    multipart: false,
    // Bodies are bounded by MAX_GRAPHQL_BODY_BYTES as they are read (bodyLimitPlugin, jsonParamsPlugin): yoga's
    // own bound would pipe each body through a TransformStream, about 5% of a GraphQL request's CPU.
    maxRequestBodySize: false,
    graphiql: { title: 'keyledger', headers: JSON.stringify({ Authorization: 'Basic <base64 of accessKeyId:secretAccessKey>' }) },
    renderGraphiQL: renderLocalGraphiQL,
    plugins: [
      bodyLimitPlugin(app),
      jsonParamsPlugin(app),
      authenticationPlugin(app, callers, recorded),
      ...documentLimits(),
      recordedOperationsLimit(),
      requestIdPlugin(recorded),
    ],
    context: ({ request, req }) => {
      // onParams answered every request it could not authenticate: none gets here without a caller.
      const caller = callers.get(request)?.caller;
      if (!caller) throw new Error('a GraphQL document reached execution unauthenticated');
      const sourceIp = sourceIpOf(req);
      const userAgent = request.headers.get('user-agent');
      const requests = recordedRequestsOf(recorded, request);
      return {
        access: app.access,
        identity: app.identity,
        audit: app.audit,
        checkpoints: app.checkpoints,
        reports: app.reports,
        operations: app.operations,
        caller,
        newRequest: (info) => {
          const requestId = uuidV7();
          requests.byPath.set(responsePathAsArray(info.path).join('.'), requestId);
          return { requestId, caller, sourceIp, userAgent };
        },
      };
    },
    maskedErrors: {
      maskError(error) {
        const original = error instanceof GraphQLError ? error.originalError : error;
        if (original instanceof KmsError) {
          return createGraphQLError(original.message, {
            ...(error instanceof GraphQLError ? { path: error.path, nodes: error.nodes } : {}),
            extensions: { code: original.code, requestId: original.requestId },
          });
        }
        if (error instanceof GraphQLError && (!error.originalError || error.originalError instanceof GraphQLError)) return error;
        app.logger.error({ error: error instanceof Error ? { type: error.name, message: error.message } : String(error) }, 'unexpected error in GraphQL layer');
        return createGraphQLError('An internal error occurred.', { extensions: { code: 'KMSInternalException' } });
      },
    },
  });
}
