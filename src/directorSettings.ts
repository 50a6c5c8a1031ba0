// The DirectorSettings resource: one director's IPVS settings as a whole. All behaviour lives in provider/ (loaded by
// the shim).
import * as pulumi from "@pulumi/pulumi";
import type { DirectorState } from "./director";
import { stackOwner } from "./owner";
import { secretHop } from "./secrets";
import { dynamicType, withProviderModule } from "./shim";
import type { DirectorSettingsArgs, FtpState, IpForwardState, IpvsTimeoutsState, SyncDaemonState, SysctlsState } from "./types";

/**
 * A director's IPVS timeouts, connection sync daemons, net.ipv4.vs.* sysctls, IP forwarding and ip_vs_ftp, held by this stack in
 * the director's ownership ledger (one stack per director: another stack's DirectorSettings for it is refused, naming
 * this one). Only the items given are managed; refresh shows where the kernel drifted from them; destroy (or dropping
 * an item) puts back the value the director had before this stack first set it. A director host/port change moves
 * the settings; everything else updates in place.
 */
export class DirectorSettings extends pulumi.CustomResource {
  // `declare`: the Resource constructor sets these outputs (see VirtualService).
  /** The director, credentials included: a secret output. */
  declare public readonly director: pulumi.Output<DirectorState>;
  declare public readonly timeouts: pulumi.Output<IpvsTimeoutsState | undefined>;
  /** Master first. */
  declare public readonly syncDaemons: pulumi.Output<SyncDaemonState[]>;
  declare public readonly sysctls: pulumi.Output<SysctlsState>;
  declare public readonly ipForward: pulumi.Output<IpForwardState | undefined>;
  /** The ports ip_vs_ftp is loaded with (as read back: absent when the module is not loaded). */
  declare public readonly ftp: pulumi.Output<FtpState | undefined>;
  declare public readonly healthMetricsDirectory: pulumi.Output<string | undefined>;
  /** The stack the director's ledger records as holding these settings: "organization/project/stack". */
  declare public readonly owner: pulumi.Output<string>;

  constructor(name: string, args: DirectorSettingsArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      dynamicType("DirectorSettings"),
      name,
      withProviderModule("DirectorSettings", {
        // Every output is listed so the engine knows its name before the provider fills it.
        timeouts: undefined, syncDaemons: undefined, sysctls: undefined, ipForward: undefined, ftp: undefined, healthMetricsDirectory: undefined,
        ...args,
        owner: stackOwner(),
        // Credentials must never be plaintext in state (inputs included), even when the program passed them plain.
        director: secretHop(args.director),
      }),
      { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "director"] },
    );
  }
}
