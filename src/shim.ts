import type * as pulumi from "@pulumi/pulumi";

/** The module whose `providers` record implements this package's resources inside the engine's provider process. */
export const PROVIDER_MODULE = "pulumi-ipvs/provider";

/**
 * What a dynamic resource stores as `__provider`: the CommonJS module the Node dynamic-provider plugin evaluates for
 * every call, taking its `handler()` as the provider (@pulumi/pulumi cmd/dynamic-provider, getProvider). Pulumi's
 * closure serializer would write ~3 KB of wrappers for a six-method delegating object; the engine re-serializes every
 * resource's inputs and outputs, both holding it, at every checkpoint of an up — with hundreds of real servers that
 * was half of the state and most of the engine's time. So the module is written here: ~200 bytes, nothing captured.
 *
 * It loads the installed package when a call runs (`require` resolves from the program directory, where the plugin
 * runs), so behaviour follows the installed version and no schema, SSH client or secret is ever in state. Delete runs
 * the text stored at the last create/update: `providers[kind]`, with the methods it has, is a compatibility surface
 * later versions keep (the plugin itself supplies defaults for a missing check, diff, read, update or delete).
 * `moduleName` exists so tests can point the same mechanism at a test-only provider package.
 */
export function providerModule(kind: string, moduleName: string = PROVIDER_MODULE): string {
  const m = JSON.stringify(moduleName);
  const k = JSON.stringify(kind);
  const missing = JSON.stringify(`${moduleName} has no provider for resource kind "${kind}" (is the installed version older?)`);
  return `exports.handler = () => { const p = require(${m}).providers?.[${k}]; if (!p) throw new Error(${missing}); return p; };\n`;
}

/**
 * A dynamic resource's properties (type dynamicType(kind), served by the engine's Node dynamic-provider plugin) with
 * providerModule(kind) as `__provider`: what `pulumi.dynamic.Resource` passes to CustomResource, with the small module
 * text instead of a serialized closure. Each resource class extends CustomResource itself and calls this in its super
 * call: the SDK records a resource's source position a fixed number of frames above CustomResource's constructor, so
 * a shared base class in between would make every resource's position a line of this package, not the program's.
 */
export function withProviderModule(kind: string, props: pulumi.Inputs, moduleName?: string): pulumi.Inputs {
  if ("__provider" in props) throw new Error("a dynamic resource must not define the __provider key");
  return { ...props, __provider: providerModule(kind, moduleName) };
}

/** The type token `pulumi.dynamic.Resource` gives a resource of `kind` in `module`. */
export function dynamicType(kind: string, module = "ipvs"): string {
  return `pulumi-nodejs:dynamic/${module}:${kind}`;
}
