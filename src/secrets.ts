// Credentials must be secrets in state however the program passed them. `additionalSecretOutputs` covers outputs only;
// a plain string input would be stored in clear among the resource's inputs. So every resource passes its directors
// through secretDirectors() before they reach the engine. Nested secret Outputs survive serialization (rpc.js
// serializeProperty encodes each one as a secret value in place). The dynamic-provider plugin declares
// acceptSecrets=false, so the engine strips them before calling the provider (it still receives plain strings) and
// re-marks what check returns: a list holding any secret becomes secret as a whole there (annotateSecrets).
import * as pulumi from "@pulumi/pulumi";
import { CREDENTIAL_FIELDS } from "../provider/director";
import type { DirectorArgs, SshConnectionArgs } from "./director";


type Opaque = pulumi.Output<unknown> | Promise<unknown>;

/** An Output or a Promise: a value whose contents are not known now, so it can only be made secret as a whole. */
function isOpaque(v: unknown): v is Opaque {
  return pulumi.Output.isInstance(v) || v instanceof Promise;
}

/**
 * A copy of one hop with its credentials (and those of every jump host below it) secret; other fields untouched, so a
 * preview still shows which host or port changed. A hop given as an Output or Promise becomes secret as a whole.
 */
export function secretHop<T extends SshConnectionArgs>(hop: pulumi.Input<T>): pulumi.Input<T> {
  if (isOpaque(hop)) return pulumi.secret(hop) as pulumi.Output<T>;
  if (hop === null || typeof hop !== "object") return hop;
  const out: T = { ...hop };
  for (const field of CREDENTIAL_FIELDS) {
    // Absent stays absent: a secret undefined would still be sent, as an empty secret value.
    if (out[field] !== undefined && out[field] !== null) out[field] = pulumi.secret(out[field]);
  }
  if (out.jumpHost !== undefined && out.jumpHost !== null) out.jumpHost = secretHop(out.jumpHost);
  return out;
}

/** The `directors` input of either resource with every credential secret (see secretHop; an opaque list: all of it). */
export function secretDirectors(
  directors: pulumi.Input<pulumi.Input<DirectorArgs>[]>,
): pulumi.Input<pulumi.Input<DirectorArgs>[]> {
  if (isOpaque(directors)) return pulumi.secret(directors) as pulumi.Output<DirectorArgs[]>;
  if (!Array.isArray(directors)) return directors;
  return directors.map((d) => secretHop(d));
}
