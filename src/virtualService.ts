// The VirtualService resource: what a program declares. All behaviour lives in provider/ (loaded by the shim).
import * as pulumi from "@pulumi/pulumi";
import type { DirectorArgs, DirectorState } from "./director";
import { stackOwner } from "./owner";
import { secretDirectors } from "./secrets";
import { dynamicType, withProviderModule } from "./shim";
import { selfUrn } from "./urn";
import type { VirtualServiceModel } from "../provider/schema";
import type { VirtualServiceArgs } from "./types";

/** The recorded fields as outputs: the normalised model's (provider/schema/models.ts), merged into the class below. */
type Recorded = Omit<VirtualServiceModel, "directors" | "owner" | "resourceUrn">;
type VirtualServiceOutputs = {
  readonly [K in keyof Recorded]-?: pulumi.Output<{} extends Pick<Recorded, K> ? Recorded[K] | undefined : Recorded[K]>;
};
// Merged into the class: like its `declare` fields, these are set by the Resource constructor, not initialised.
export interface VirtualService extends VirtualServiceOutputs {}

/**
 * An IPVS virtual service (`ipvsadm -A`) on one or more directors. Identity (protocol, address, port, or fwmark, and
 * family) changes replace it; everything else, directors included, updates in place without dropping connections.
 */
export class VirtualService extends pulumi.CustomResource {
  // `declare`: the Resource constructor sets these outputs; a plain field (`x!: T`) compiled for ES2022 would be
  // re-initialised to undefined after super() returns, so dependents (a RealServer's service) would see no outputs.
  /** The directors, credentials included: a secret output. */
  declare public readonly directors: pulumi.Output<DirectorState[]>;
  /** The stack the directors' ownership ledger records for this service: "organization/project/stack". */
  declare public readonly owner: pulumi.Output<string>;

  constructor(name: string, args: VirtualServiceArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      dynamicType("VirtualService"),
      name,
      withProviderModule("VirtualService", {
        // Every output is listed so the engine knows its name before the provider fills it.
        family: undefined, protocol: undefined, address: undefined, port: undefined, fwmark: undefined,
        scheduler: undefined, schedulerFlags: undefined, persistence: undefined, onePacket: undefined, bindAddress: undefined, drain: undefined,
        healthCheck: undefined, minHealthy: undefined, sorryServer: undefined,
        adopt: undefined, takeover: undefined, deleteForeignRealServers: undefined,
        ...args,
        owner: stackOwner(),
        resourceUrn: selfUrn(name, "VirtualService", opts),
        // Credentials must never be plaintext in state (inputs included), even when the program passed them plain.
        directors: secretDirectors(args.directors),
      }),
      { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "directors"] },
    );
  }

  /**
   * Reads an existing service into the program without managing it. `id` is a VirtualService id
   * ("tcp/192.0.2.10:80@203.0.113.5:22"); `directors` says how to reach them.
   */
  public static get(
    name: string,
    id: pulumi.Input<pulumi.ID>,
    state: { directors: pulumi.Input<pulumi.Input<DirectorArgs>[]> },
    opts?: pulumi.CustomResourceOptions,
  ): VirtualService {
    // The constructor's secretDirectors() makes the credentials in this state secret.
    return new VirtualService(name, state as VirtualServiceArgs, { ...opts, id });
  }
}
