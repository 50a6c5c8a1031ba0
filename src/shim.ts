import * as pulumi from "@pulumi/pulumi";

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
 * A dynamic resource (type `pulumi-nodejs:dynamic/<module>:<kind>`, served by the engine's Node dynamic-provider
 * plugin) whose `__provider` is providerModule(kind): what `pulumi.dynamic.Resource` makes, with the small module text
 * instead of a serialized closure.
 */
export abstract class ShimResource extends pulumi.CustomResource {
  protected constructor(
    kind: string,
    name: string,
    props: pulumi.Inputs,
    opts: pulumi.CustomResourceOptions | undefined,
    options: { module?: string; moduleName?: string } = {},
  ) {
    if ("__provider" in props) throw new Error("a dynamic resource must not define the __provider key");
    super(dynamicType(kind, options.module), name, { ...props, __provider: providerModule(kind, options.moduleName) }, opts);
  }
}

/** The type token `pulumi.dynamic.Resource` gives a resource of `kind` in `module`. */
export function dynamicType(kind: string, module = "ipvs"): string {
  return `pulumi-nodejs:dynamic/${module}:${kind}`;
}
