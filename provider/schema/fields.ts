// A resource's field table: each input with its role and its schema (rule and default). diff, the replace rules, the
// identity type checks and the RealServer's service reference are all derived from these tables (provider/resources/
// <name>/schema.ts, realServer/fields.ts), so "what is identity" is written once.
import type { z } from "zod";

/**
 * An enum-like input as Pulumi's SDKs type them: any string (a value from config compiles), with the known values
 * offered for completion. The provider's check refuses an unknown value at preview, naming the field and the choices.
 */
export type OneOf<T extends string> = T | (string & {});

/**
 * identity: the kernel cannot SET it, so a change replaces the entry. directors: where the entry lives, compared as a
 * set and changed in place. setting: changed in place (on the kernel, or only in state like drain and adopt). engine:
 * facts about the Pulumi resource itself (its URN), carried to the provider and not compared as a setting (a different
 * URN is a rename with aliases: an in-place update, see diff.ts renamed()).
 */
export type FieldRole = "identity" | "directors" | "setting" | "engine";

export interface Field<R extends FieldRole = FieldRole, S extends z.ZodType = z.ZodType> {
  role: R;
  schema: S;
}

export const field = <R extends FieldRole, S extends z.ZodType>(role: R, schema: S): Field<R, S> => ({ role, schema });

/** The names of the fields of `F` whose role is `R`. */
export type FieldsWithRole<F extends Record<string, Field>, R extends FieldRole> = {
  [K in keyof F]: F[K]["role"] extends R ? K : never;
}[keyof F] & string;

/** The zod shape of a field table. */
export function shapeOf<F extends Record<string, Field>>(fields: F): { [K in keyof F]: F[K]["schema"] } {
  return Object.fromEntries(Object.entries(fields).map(([k, f]) => [k, f.schema])) as { [K in keyof F]: F[K]["schema"] };
}

/** The names of the fields with `role`, in table order. */
export function fieldsWithRole<F extends Record<string, Field>, R extends FieldRole>(fields: F, role: R): FieldsWithRole<F, R>[] {
  return Object.entries(fields).flatMap(([k, f]) => (f.role === role ? [k as FieldsWithRole<F, R>] : []));
}
