import type * as pulumi from "@pulumi/pulumi";

/** The module whose `providers` record implements this package's resources inside the engine's provider process. */
export const PROVIDER_MODULE = "pulumi-ipvs/provider";

/**
 * The object handed to `new pulumi.dynamic.Resource(...)`. Pulumi serializes it into state and replays the serialized
 * code later — delete even runs the code stored at the last create/update. So it holds nothing but the provider kind
 * and module name: each method loads the installed package when it runs and delegates to `providers[kind]`. Behaviour
 * then follows the installed version, and no schema, SSH client or secret is ever captured.
 *
 * The method set is a compatibility surface: state written by this version must stay readable and deletable by later
 * ones, so the six methods stay, and each falls back to the engine's default behaviour when the provider lacks it.
 * `moduleName` exists so tests can point the same mechanism at a test-only provider package.
 */
export function providerShim(kind: string, moduleName: string = PROVIDER_MODULE): pulumi.dynamic.ResourceProvider {
  // One object per kind: Pulumi caches a provider's serialized closure per object, so a new object per resource made
  // every resource pay for serializing it again.
  const key = `${moduleName}\0${kind}`;
  let shim = shims.get(key);
  if (!shim) shims.set(key, (shim = makeShim(kind, moduleName)));
  return shim;
}

const shims = new Map<string, pulumi.dynamic.ResourceProvider>();

function makeShim(kind: string, moduleName: string): pulumi.dynamic.ResourceProvider {
  // Runs in the provider process: `require` there resolves from the program directory, i.e. the installed package.
  const load = (): pulumi.dynamic.ResourceProvider => {
    const provider = require(moduleName).providers?.[kind];
    if (!provider) {
      throw new Error(`${moduleName} has no provider for resource kind "${kind}" (is the installed version older?)`);
    }
    return provider;
  };
  return {
    check: async (olds, news) => {
      const p = load();
      return p.check ? p.check(olds, news) : { inputs: news };
    },
    diff: async (id, olds, news) => {
      const p = load();
      return p.diff ? p.diff(id, olds, news) : {};
    },
    create: async (inputs) => load().create(inputs),
    read: async (id, props) => {
      const p = load();
      return p.read ? p.read(id, props) : { id, props };
    },
    update: async (id, olds, news) => {
      const p = load();
      if (!p.update) throw new Error(`${moduleName}: resource kind "${kind}" cannot be updated in place`);
      return p.update(id, olds, news);
    },
    delete: async (id, props) => {
      const p = load();
      if (p.delete) await p.delete(id, props);
    },
  };
}
