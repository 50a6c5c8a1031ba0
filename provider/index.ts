// What the stored provider module (src/shim.ts providerModule) loads in the engine's provider process: one provider
// per resource kind. The keys and their methods are part of state compatibility: state written today names them,
// later versions must keep them.
import type * as dynamic from "@pulumi/pulumi/dynamic";
import { directorSettingsProvider } from "./resources/directorSettings/provider";
import { realServerPoolProvider } from "./resources/realServerPool/provider";
import { realServerHostProvider } from "./resources/realServerHost/provider";
import { realServerProvider } from "./resources/realServer/provider";
import { reporting } from "./reporting";
import { virtualServiceProvider } from "./resources/virtualService/provider";

// Each wrapped by reporting(): one message per failure, no stack for what the provider reports on purpose.
export const providers: Record<string, dynamic.ResourceProvider> = {
  VirtualService: reporting(virtualServiceProvider),
  RealServer: reporting(realServerProvider),
  RealServerPool: reporting(realServerPoolProvider),
  DirectorSettings: reporting(directorSettingsProvider),
  RealServerHost: reporting(realServerHostProvider),
};
