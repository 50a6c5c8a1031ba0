// The RealServer resource: a backend of a VirtualService. All behaviour lives in provider/ (loaded by the shim).
import * as pulumi from "@pulumi/pulumi";
import type { DirectorArgs } from "./director";
import { stackOwner } from "./owner";
import { secretDirectors } from "./secrets";
import { dynamicType, withProviderModule } from "./shim";
import { selfUrn } from "./urn";
import { DEST_FIELD_NAMES } from "../provider/resources/realServer/fields";
import type { DrainState, RealServerArgs, RealServerSettingsState, ServiceRefState } from "./types";

/**
 * A real server's own fields as outputs, as recorded (address, port, forwarding, weight, thresholds, tunnel): derived
 * from the field table (provider/resources/realServer/fields.ts) and merged into the class below.
 */
type RealServerSettingsOutputs = {
  readonly [K in keyof RealServerSettingsState]-?: pulumi.Output<{} extends Pick<RealServerSettingsState, K> ? RealServerSettingsState[K] | undefined : RealServerSettingsState[K]>;
};
// Merged into the class: like its `declare` fields, these are set by the Resource constructor, not initialised.
export interface RealServer extends RealServerSettingsOutputs {}

/**
 * An IPVS real server (`ipvsadm -a`) of a VirtualService, on every director of that service. Its address and port
 * (and its service's identity) are its identity; weight, thresholds, forwarding and tunnel update in place.
 */
export class RealServer extends pulumi.CustomResource {
  // `declare`: the Resource constructor sets these outputs; a plain field (`x!: T`) compiled for ES2022 would be
  // re-initialised to undefined after super() returns, so dependents (a RealServer's service) would see no outputs.
  /** The service's directors and identity, as the provider received them (a secret output: credentials). */
  declare public readonly service: pulumi.Output<ServiceRefState>;
  declare public readonly drain: pulumi.Output<DrainState | undefined>;
  declare public readonly adopt: pulumi.Output<boolean>;
  declare public readonly takeover: pulumi.Output<boolean>;
  /** The stack the directors' ownership ledger records for this real server: "organization/project/stack". */
  declare public readonly owner: pulumi.Output<string>;

  constructor(name: string, args: RealServerArgs, opts?: pulumi.CustomResourceOptions) {
    const s = args.service;
    const { service: _s, ...rest } = args;
    super(
      dynamicType("RealServer"),
      name,
      withProviderModule("RealServer", {
        // Every output is named in the props (the engine registers those); the field table's, then the resource's own.
        ...Object.fromEntries(DEST_FIELD_NAMES.map((k) => [k, undefined])),
        drain: undefined, adopt: undefined, takeover: undefined,
        ...rest,
        owner: stackOwner(),
        resourceUrn: selfUrn(name, "RealServer", opts),
        // The service's resolved outputs: these make the dependency edge, and tell the provider where and what to touch.
        // A VirtualService's directors output is secret already; secretDirectors also covers a hand-made reference.
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

  /**
   * Reads an existing real server without managing it. `id` is a RealServer id
   * ("tcp/192.0.2.10:80/10.0.0.11:8080@203.0.113.5:22"); `directors` says how to reach them.
   */
  public static get(
    name: string,
    id: pulumi.Input<pulumi.ID>,
    state: { directors: pulumi.Input<pulumi.Input<DirectorArgs>[]> },
    opts?: pulumi.CustomResourceOptions,
  ): RealServer {
    // The constructor's secretDirectors() makes the credentials in this state secret.
    return new RealServer(name, { service: { directors: state.directors } } as unknown as RealServerArgs, { ...opts, id });
  }
}
