import { Validator } from '../domain/errors.ts';
import { decideTagResource, decideUntagResource } from '../domain/key-decisions.ts';
import { validateTagKeys, validateTags, type Tag } from '../domain/tags.ts';
import type { Authorizer } from './authorization.ts';
import type { RequestContext } from './context.ts';
import { changeKey, readAuthorizedKey, type KeyChangeDeps } from './key-changes.ts';
import type { KeyResolver } from './key-resolver.ts';
import { decodeMarker, page, pageSize } from './pagination.ts';
import type { RequestRunner } from './request-runner.ts';

/** A key's tags: TagResource, UntagResource, ListResourceTags. Tagging is a lifecycle change of the key. */
export class TagService {
  readonly #runner: RequestRunner;
  readonly #changeDeps: KeyChangeDeps;

  constructor(deps: { runner: RequestRunner; region: string; resolver: KeyResolver; authorizer: Authorizer }) {
    this.#runner = deps.runner;
    this.#changeDeps = deps;
  }

  tagResource(ctx: RequestContext, input: { keyId: string; tags: Tag[] }): Promise<Record<string, never>> {
    return changeKey(this.#runner, this.#changeDeps, ctx, 'TagResource', input.keyId, { tags: input.tags }, (key) => {
      const bad = validateTags(input.tags);
      if (bad) throw bad;
      return decideTagResource(key, input.tags);
    });
  }

  untagResource(ctx: RequestContext, input: { keyId: string; tagKeys: string[] }): Promise<Record<string, never>> {
    return changeKey(this.#runner, this.#changeDeps, ctx, 'UntagResource', input.keyId, { tagKeys: input.tagKeys }, (key) => {
      const bad = validateTagKeys(input.tagKeys);
      if (bad) throw bad;
      return decideUntagResource(key, input.tagKeys);
    });
  }

  listResourceTags(
    ctx: RequestContext,
    input: { keyId: string; limit?: number | null; marker?: string | null },
  ): Promise<{ tags: Tag[]; nextMarker: string | null; truncated: boolean }> {
    const requestParameters = { keyId: input.keyId, limit: input.limit ?? undefined, marker: input.marker ?? undefined };
    return this.#runner.run(ctx, { eventName: 'ListResourceTags', readOnly: true, requestParameters }, async (scope) => {
      const v = new Validator();
      const size = pageSize(v, input.limit, 50, 50);
      v.throwIfAny();
      const after = decodeMarker(input.marker);
      const key = await readAuthorizedKey(this.#changeDeps, scope, input.keyId, 'kms:ListResourceTags');
      const tags = key.tags.filter((t) => after === undefined || t.tagKey > after).slice(0, size + 1);
      const p = page(tags, size, (t) => t.tagKey);
      return { tags: p.items, nextMarker: p.nextMarker, truncated: p.truncated };
    });
  }
}
