// A resource's own URN as an input: the provider names it in progress messages (provider/progress.ts), so a drain's
// "connections left" shows on that resource's row of `pulumi up` (the dynamic-provider methods are not given it).
import * as pulumi from "@pulumi/pulumi";
import { dynamicType } from "./shim";

/**
 * The URN the engine will give this package's resource `name` of `kind` ("RealServer") under `opts.parent`, with no
 * dependency on the parent.
 */
export function selfUrn(name: string, kind: string, opts?: pulumi.CustomResourceOptions): pulumi.Output<string> {
  const parent = opts?.parent;
  // Through a promise: an input holding the parent's urn Output would make the resource depend on its own parent.
  const parentUrn = parent ? pulumi.output(new Promise<string>((resolve) => parent.urn.apply((u) => resolve(u)))) : undefined;
  return pulumi.createUrn(name, dynamicType(kind), parentUrn);
}
