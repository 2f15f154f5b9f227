/**
 * Caps on open GraphQL subscriptions (issue 15, finding 6): each one holds a
 * stream and reads the database while it runs (an auditEvents tail when woken,
 * a checkpoints stream once a second), so a principal, and a process, may
 * hold only so many. The auditEvents and checkpoints subscriptions share the
 * same slots.
 */
import { KmsError } from '../domain/errors.ts';

/** Open subscriptions (auditEvents and checkpoints together) a principal, and a process, may hold. */
export interface SubscriptionLimits {
  perPrincipal: number;
  perProcess: number;
}

/** The defaults of KEYLEDGER_AUDIT_TAILS_PER_PRINCIPAL and KEYLEDGER_AUDIT_TAILS. */
export const DEFAULT_SUBSCRIPTION_LIMITS: SubscriptionLimits = { perPrincipal: 10, perProcess: 500 };

/** One open subscription's slot: released once, however many times `release` is called. */
export interface SubscriptionSlot {
  release(): void;
}

/**
 * The process's open subscriptions, per principal and in all.
 *
 * @example
 * const slot = slots.reserve(ctx.caller.principalArn); // LimitExceededException past a cap
 * try { ...stream... } finally { slot.release(); }
 */
export class SubscriptionSlots {
  readonly limits: SubscriptionLimits;
  readonly #open = new Map<string, number>();
  #openTotal = 0;

  constructor(limits: SubscriptionLimits = DEFAULT_SUBSCRIPTION_LIMITS) {
    this.limits = limits;
  }

  /** How many subscriptions this process holds open. */
  get open(): number {
    return this.#openTotal;
  }

  /** Takes a slot for `principalArn`; LimitExceededException when it, or the process, holds its maximum. */
  reserve(principalArn: string): SubscriptionSlot {
    const held = this.#open.get(principalArn) ?? 0;
    if (held >= this.limits.perPrincipal) {
      throw new KmsError(
        'LimitExceededException',
        `A principal can hold at most ${this.limits.perPrincipal} open subscriptions (auditEvents and checkpoints together). End one before starting another.`,
      );
    }
    if (this.#openTotal >= this.limits.perProcess) {
      throw new KmsError(
        'LimitExceededException',
        `This server holds its maximum of ${this.limits.perProcess} open subscriptions (auditEvents and checkpoints together). Try again later.`,
      );
    }
    this.#open.set(principalArn, held + 1);
    this.#openTotal++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        const now = this.#open.get(principalArn) ?? 0;
        if (now <= 1) this.#open.delete(principalArn);
        else this.#open.set(principalArn, now - 1);
        this.#openTotal--;
      },
    };
  }
}

/**
 * `items` as a subscription's stream that calls `stop` (once or more: make it
 * idempotent) when it ends, fails, or its consumer returns or throws: the
 * place where a stream gives back its slot and aborts its waits. A generator
 * suspended in a read or a wait only sees return() once it yields again, so
 * `stop` runs first, and an abort in it makes ending prompt.
 *
 * @example
 * return streamUntilStopped(this.#follow(ctx, controller.signal), () => { controller.abort(); slot.release(); });
 */
export function streamUntilStopped<T>(items: AsyncGenerator<T, undefined>, stop: () => void): AsyncIterableIterator<T> {
  const stream: AsyncIterableIterator<T> = {
    next: async () => {
      try {
        const result = await items.next();
        if (result.done) stop();
        return result;
      } catch (error) {
        stop();
        throw error;
      }
    },
    return: (value?: unknown) => {
      stop();
      return items.return(value as undefined);
    },
    throw: (error?: unknown) => {
      stop();
      return items.throw(error);
    },
    [Symbol.asyncIterator]: () => stream,
  };
  return stream;
}
