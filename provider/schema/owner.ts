// The owner of an entry as the directors' ownership ledger records it (provider/helper/PROTOCOL.md "Ownership
// ledger"): the stack that created or adopted it, "organization/project/stack". src/ passes the running stack's;
// state written before the ledger has none (then the ops carry none: the helper's pre-ledger behaviour).
import { z } from "zod";
import { rule } from "./unknown";

/** The helper's rule: three non-empty parts of [A-Za-z0-9._-], at most 300 characters in all. */
const OWNER = /^[A-Za-z0-9._-]+\/[A-Za-z0-9._-]+\/[A-Za-z0-9._-]+$/;
export const MAX_OWNER_LENGTH = 300;

const RULE = `"organization/project/stack": three non-empty parts of letters, digits, ".", "_" and "-"`;

export const ownerSchema = (what: string) =>
  z.string({ error: rule(`${what} must be a string ${RULE}`) }).superRefine((s, ctx) => {
    if (s.length > MAX_OWNER_LENGTH)
      ctx.addIssue({ code: "custom", message: `${what} must be at most ${MAX_OWNER_LENGTH} characters, not ${s.length}` });
    else if (!OWNER.test(s)) ctx.addIssue({ code: "custom", message: `${what} must be ${RULE}, not ${JSON.stringify(s)}` });
  });
