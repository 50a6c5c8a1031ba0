// The VirtualService resource: what a program declares. All behaviour lives in provider/ (loaded by the shim).
import * as pulumi from "@pulumi/pulumi";
import type { DirectorArgs } from "./director";
import { providerShim } from "./shim";
import type { Family, PersistenceArgs, Scheduler, SchedulerFlag, TransportProtocol, VirtualServiceArgs } from "./types";

/** A director as recorded in state (credentials included, hence a secret output). */
export type DirectorState = { [K in keyof DirectorArgs]: pulumi.Unwrap<DirectorArgs[K]> };

/**
 * An IPVS virtual service (`ipvsadm -A`) on one or more directors. Identity (protocol, address, port, or fwmark, and
 * family) changes replace it; everything else, directors included, updates in place without dropping connections.
 */
export class VirtualService extends pulumi.dynamic.Resource {
  /** The directors, credentials included: a secret output. */
  public readonly directors!: pulumi.Output<DirectorState[]>;
  public readonly family!: pulumi.Output<Family>;
  public readonly protocol!: pulumi.Output<TransportProtocol | undefined>;
  public readonly address!: pulumi.Output<string | undefined>;
  public readonly port!: pulumi.Output<number | undefined>;
  public readonly fwmark!: pulumi.Output<number | undefined>;
  public readonly scheduler!: pulumi.Output<Scheduler>;
  public readonly schedulerFlags!: pulumi.Output<SchedulerFlag[]>;
  public readonly persistence!: pulumi.Output<pulumi.Unwrap<PersistenceArgs> | undefined>;
  public readonly onePacket!: pulumi.Output<boolean>;
  public readonly adopt!: pulumi.Output<boolean>;

  constructor(name: string, args: VirtualServiceArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      providerShim("VirtualService"),
      name,
      {
        // Every output is listed so the engine knows its name before the provider fills it.
        family: undefined, protocol: undefined, address: undefined, port: undefined, fwmark: undefined,
        scheduler: undefined, schedulerFlags: undefined, persistence: undefined, onePacket: undefined, adopt: undefined,
        ...args,
      },
      // Credentials inside directors must never be plaintext in state, even when the program passed them plain.
      { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "directors"] },
      "ipvs",
      "VirtualService",
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
    return new VirtualService(name, state as VirtualServiceArgs, { ...opts, id });
  }
}
