// What the stored provider module (src/shim.ts providerModule) loads in the engine's provider process: one provider
// per resource kind. The keys and their methods are part of state compatibility: state written today names them,
// later versions must keep them.
import type * as dynamic from "@pulumi/pulumi/dynamic";
import { directorSettingsProvider } from "./directorSettingsProvider";
import { realServerPoolProvider } from "./realServerPoolProvider";
import { realServerProvider } from "./realServerProvider";
import { virtualServiceProvider } from "./virtualServiceProvider";

export const providers: Record<string, dynamic.ResourceProvider> = {
  VirtualService: virtualServiceProvider,
  RealServer: realServerProvider,
  RealServerPool: realServerPoolProvider,
  DirectorSettings: directorSettingsProvider,
};
