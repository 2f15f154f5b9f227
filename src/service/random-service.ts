import { randomBytes } from 'node:crypto';
import { KmsError, Validator } from '../domain/errors.ts';
import { enforce, type Authorizer } from './authorization.ts';
import type { RequestContext } from './context.ts';
import type { RequestRunner } from './request-runner.ts';

/** GenerateRandom, which uses no key. */
export class RandomService {
  readonly #runner: RequestRunner;
  readonly #authorizer: Authorizer;

  constructor(deps: { runner: RequestRunner; authorizer: Authorizer }) {
    this.#runner = deps.runner;
    this.#authorizer = deps.authorizer;
  }

  /** GenerateRandom: bytes from the CSPRNG, recorded like every request (the bytes are not). */
  generateRandom(ctx: RequestContext, input: { numberOfBytes?: number | null; customKeyStoreId?: string | null }): Promise<{ plaintext: Buffer }> {
    const requestParameters = { numberOfBytes: input.numberOfBytes ?? undefined, customKeyStoreId: input.customKeyStoreId ?? undefined };
    return this.#runner.runKeyUse(ctx, { eventName: 'GenerateRandom', readOnly: true, requestParameters }, async (scope) => {
      await enforce(this.#authorizer, scope, { action: 'kms:GenerateRandom' });
      new Validator().range('numberOfBytes', input.numberOfBytes, 1, 1024).throwIfAny();
      if (input.numberOfBytes == null) throw new KmsError('ValidationException', 'NumberOfBytes is required.');
      if (input.customKeyStoreId != null) throw new KmsError('UnsupportedOperationException', 'keyledger does not support custom key stores.');
      scope.setAdditionalEventData({ numberOfBytes: input.numberOfBytes });
      return { plaintext: randomBytes(input.numberOfBytes) };
    });
  }
}
