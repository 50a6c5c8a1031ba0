// The RealServerPool resource: one VirtualService's real servers as one resource. All behaviour lives in provider/.
import * as pulumi from "@pulumi/pulumi";
import type { DirectorArgs } from "./director";
import { stackOwner } from "./owner";
import { secretDirectors } from "./secrets";
import { dynamicType, withProviderModule } from "./shim";
import { selfUrn } from "./urn";
import type { DrainState, HealthCheckState, RealServerPoolArgs, RealServerPoolMemberState, ServiceRefState } from "./types";

/**
 * The real servers (`ipvsadm -a`) of one VirtualService as one resource, on every director of that service: for
 * hundreds to thousands of backends, where one RealServer each would cost the engine a resource each. Members are
 * identified by address:port and change in place; preview shows per member what is added, removed or changed.
 */
export class RealServerPool extends pulumi.CustomResource {
  /** The service's directors and identity, as the provider received them (a secret output: credentials). */
  declare public readonly service: pulumi.Output<ServiceRefState>;
  /** The members by "address:port" ("[2001:db8::11]:80" for IPv6), as recorded. */
  declare public readonly members: pulumi.Output<Record<string, RealServerPoolMemberState>>;
  /** The members' default check as given (each member's output is the check in effect). */
  declare public readonly healthCheck: pulumi.Output<HealthCheckState | undefined>;
  declare public readonly drain: pulumi.Output<DrainState | undefined>;
  declare public readonly adopt: pulumi.Output<boolean>;
  declare public readonly takeover: pulumi.Output<boolean>;
  /** The stack the directors' ownership ledger records for the members: "organization/project/stack". */
  declare public readonly owner: pulumi.Output<string>;

  constructor(name: string, args: RealServerPoolArgs, opts?: pulumi.CustomResourceOptions) {
    const s = args.service;
    super(
      dynamicType("RealServerPool"),
      name,
      withProviderModule("RealServerPool", {
        healthCheck: undefined, drain: undefined, adopt: undefined, takeover: undefined,
        ...args,
        owner: stackOwner(),
        // Also the holder the ledger records for every member (a real server belongs to one resource).
        resourceUrn: selfUrn(name, "RealServerPool", opts),
        // As for a RealServer: the service's resolved outputs make the dependency edge and say where to act.
        service: {
          directors: secretDirectors(s.directors as pulumi.Input<DirectorArgs[]>),
          family: s.family, protocol: s.protocol, address: s.address, port: s.port, fwmark: s.fwmark,
          // The service's default check: the provider resolves the one in effect (provider/schema/health.ts).
          healthCheck: s.healthCheck,
        },
      }),
      { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "service"] },
    );
  }
}
