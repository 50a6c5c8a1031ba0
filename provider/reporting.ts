// What a user reads when a provider method fails: each failure once, in the words of the program's inputs, with no
// JavaScript stack for a failure the provider reports on purpose. Two things of the engine and the dynamic-provider
// plugin (@pulumi/pulumi cmd/dynamic-provider) stand in the way, and this wrapper around every provider handles them:
//
// - For a check failure with a property, the engine prints `property <path> value <v> has a problem: <reason>`, looking
//   the path up as one top-level key: `director.hostKey value {<nil>}` for a nested field that was set, and a raw dump
//   (`value {map[host:{127.0.0.1} …]}`) for a top-level object. A failure without a property is printed as
//   `resource '<name>' has a problem: <reason>`, so check's failures are handed over that way, the path in the reason.
// - For check, diff, read and delete the plugin prints `${e}: ${e.stack}` with console.error before it returns the
//   error, which the engine then shows again: every message twice, once with its stack. A failure raised on purpose
//   (see deliberate) has that print dropped; a bug (a TypeError, …) keeps its stack, which is what a report needs.
import type * as dynamic from "@pulumi/pulumi/dynamic";
import { HelperError } from "./protocol";
import { DirectorError } from "./session";

/**
 * An error the provider raises on purpose, whose message says all a user needs: a DirectorError, a helper's refusal,
 * and the plain Errors the providers build their messages into. Subclasses of Error the runtime throws for a bug
 * (TypeError, RangeError, …) are not.
 */
export function deliberate(e: unknown): e is Error {
  return e instanceof DirectorError || e instanceof HelperError || (e instanceof Error && Object.getPrototypeOf(e) === Error.prototype);
}

/** The exact lines the plugin is about to print for deliberate errors; each is dropped once when it comes. */
const unprinted = new Set<string>();
let filtering = false;

/** Drops the plugin's console.error(`${e}: ${e.stack}`) for `e`, the only print it makes of an error. */
function quiet(e: Error): void {
  if (!filtering) {
    filtering = true;
    const print = console.error.bind(console);
    console.error = (...args: unknown[]) => {
      if (args.length === 1 && typeof args[0] === "string" && unprinted.delete(args[0])) return;
      print(...args);
    };
  }
  unprinted.add(`${e}: ${e.stack}`);
}

/** fn, with a deliberate error's duplicate print dropped (the engine still shows its message). */
function once<A extends unknown[], R>(fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args) => {
    try {
      return await fn(...args);
    } catch (e) {
      if (deliberate(e)) quiet(e);
      throw e;
    }
  };
}

/**
 * A check failure as one sentence naming its input: "directors[0].hostKey must be …" when the reason starts with the
 * field's own name, else "<path>: <reason>".
 */
export function failureSentence(f: dynamic.CheckFailure): string {
  if (!f.property || f.property === "(inputs)") return f.reason;
  const field = /[A-Za-z_]\w*$/.exec(f.property)?.[0];
  if (field && f.reason.startsWith(`${field} `)) return `${f.property.slice(0, -field.length)}${f.reason}`;
  return `${f.property}: ${f.reason}`;
}

/** `provider` with failures reported as described above. create and update are not printed by the plugin. */
export function reporting(provider: dynamic.ResourceProvider): dynamic.ResourceProvider {
  const { check, diff, read, delete: remove } = provider;
  return {
    ...provider,
    ...(check && {
      check: once(async (olds: unknown, news: unknown) => {
        const r = await check.call(provider, olds, news);
        return r.failures?.length ? { ...r, failures: r.failures.map((f) => ({ property: "", reason: failureSentence(f) })) } : r;
      }),
    }),
    ...(diff && { diff: once(diff.bind(provider)) }),
    ...(read && { read: once(read.bind(provider)) }),
    ...(remove && { delete: once(remove.bind(provider)) }),
  };
}
