// Bounded exponential backoff for dialling a director. Only DirectorErrors marked retryable (network trouble) are
// retried; authentication, host key and configuration failures surface at once. Also the deadline that bounds every
// other wait on a director (within()), so no network wait can hang `pulumi up`.

import { DirectorError } from "./errors";

export interface RetryPolicy {
  /** Most attempts in total (first try included). */
  attempts: number;
  /** No new attempt starts once this much time has passed since the first. */
  budgetMs: number;
  /** Delay before the second attempt; doubles each time, capped at maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
}

/** 5 attempts within 1.5 × the hop's connect timeout (20 s → 30 s). */
export function retryPolicyFor(connectTimeoutSeconds: number): RetryPolicy {
  return { attempts: 5, budgetMs: 1500 * connectTimeoutSeconds, baseDelayMs: 500, maxDelayMs: 8000 };
}

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export async function withRetry<T>(fn: (attempt: number) => Promise<T>, policy: RetryPolicy, clock: Clock = realClock): Promise<T> {
  const start = clock.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (!(err instanceof DirectorError) || !err.retryable) throw err;
      const delay = Math.min(policy.baseDelayMs * 2 ** (attempt - 1), policy.maxDelayMs);
      const elapsed = clock.now() - start;
      if (attempt >= policy.attempts || elapsed + delay > policy.budgetMs) {
        throw new DirectorError(
          err.kind,
          err.target,
          `${err.message} Gave up after ${attempt} attempt${attempt > 1 ? "s" : ""} in ${Math.round((elapsed) / 1000)} s; ` +
            `check that sshd on ${err.target} is running and reachable from here.`,
        );
      }
      await clock.sleep(delay);
    }
  }
}

/**
 * Settles as `work` does, unless `ms` pass first: then rejects with expired(), which also tears down what `work` waits
 * on (a channel, a connection). A later settlement of `work` is ignored.
 */
export function within<T>(work: Promise<T>, ms: number, expired: () => Error): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(expired()), ms);
    work.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

/** How every deadline message says it: "no answer within 60 s (operationTimeoutSeconds)". */
export function noAnswerWithin(seconds: number, setting: string): string {
  return `no answer within ${seconds} s (${setting})`;
}
