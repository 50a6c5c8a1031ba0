// Preview's unknown values. During preview the engine sends not-yet-known values as the string UNKNOWN, whatever the
// field's type. Every leaf schema therefore also accepts UNKNOWN (`u()`), and every cross-field rule skips itself when
// one of its fields is UNKNOWN, so an unknown value never fails and never hides another field's failure. parse*() then
// refuses any UNKNOWN left over: by create/update time every value must be known.
import { z } from "zod";

/** What the Node dynamic-provider plugin hands us for a value that is not known yet (preview). */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
export type Unknown = typeof UNKNOWN;
export const isUnknown = (v: unknown): v is Unknown => v === UNKNOWN;

/** T with UNKNOWN removed everywhere: the shape of fully known (create/update time) values. */
export type Known<T> = T extends Unknown
  ? never
  : T extends readonly (infer E)[]
    ? Known<E>[]
    : T extends object
      ? { [K in keyof T]: Known<T[K]> }
      : T;

/** T where every property may be UNKNOWN: the shape check() returns. */
export type Checked<T> = T extends readonly (infer E)[]
  ? Checked<E>[] | Unknown
  : T extends object
    ? { [K in keyof T]: Checked<T[K]> } | Unknown
    : T | Unknown;

const unknownLiteral = z.literal(UNKNOWN);
/** Accept the preview UNKNOWN in place of a value of `s`. */
export const u = <T extends z.ZodType>(s: T) => z.union([unknownLiteral, s]);

/** An error message that says "is required" when the value is missing, `text` otherwise. */
export const rule =
  (text: string) =>
  (iss: { input?: unknown }): string =>
    iss.input === undefined ? "is required" : text;
