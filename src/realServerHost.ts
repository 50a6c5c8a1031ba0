// The RealServerHost resource: the machine behind DR and tunnel real servers. All behaviour lives in provider/ (loaded by the shim).
import * as pulumi from "@pulumi/pulumi";
import type { DirectorArgs, DirectorState } from "./director";
import { stackOwner } from "./owner";
import { secretHop } from "./secrets";
import { dynamicType, withProviderModule } from "./shim";
import type { TunnelType } from "./types";
import { selfUrn } from "./urn";
import type { VirtualService } from "./virtualService";

export interface RealServerHostArgs {
  /** How to reach the host over SSH: a director's settings (a jumpHost through the director works). No IPVS needed there. */
  host: pulumi.Input<DirectorArgs>;
  /** Services whose VIPs the host must accept (address services; a fwmark service's addresses go in vips). */
  services?: VirtualService[];
  /** More VIPs the host must accept (IPv4 or IPv6; IPv4 only with tunnel forwarding). With services, each VIP is prepared once. */
  vips?: pulumi.Input<pulumi.Input<string>[]>;
  /**
   * How the directors forward to this host. "dr": VIPs on lo, ARP for them suppressed. "tunnel": the tunnel type's
   * module and fallback device (ipip: tunl0; gre: ip_gre's gre0) up with the VIPs, rp_filter relaxed on that device
   * (and all loosened from strict), ARP suppressed. The outer headers cost 20 bytes of MTU (ipip) or 24 (gre; 28 with
   * its checksum) between directors and this host: see the README's "Tunnel MTU".
   * Changing it (or tunnel.type) replaces the resource: the old preparation is put back first.
   */
  forwarding: pulumi.Input<"dr" | "tunnel">;
  /**
   * Tunnel options, required with forwarding "tunnel" and only there: the encapsulation, the same as the real servers'
   * tunnel.type ("ipip" or "gre"; gue is refused at preview for now).
   */
  tunnel?: pulumi.Input<{ type: pulumi.Input<TunnelType>; port?: pulumi.Input<number> }>;
}

/**
 * The host of DR and tunnel real servers, prepared so the traffic a director forwards to it arrives. dr: each VIP on
 * `lo` (IPv4 /32, IPv6 /128). tunnel: the module (ipip or ip_gre), its device (`tunl0` or `gre0`) up with the VIPs
 * (IPv4), reverse-path filtering relaxed on that device (and `all` loosened from strict). Both, with an IPv4 VIP:
 * `net.ipv4.conf.all.arp_ignore=1` and `arp_announce=2` so the host never answers or announces the VIP on its LAN.
 * The host's ledger records what was changed and the values found: destroy puts back only that (a VIP already there
 * stays, also after boot put it back following a reboot; an address or sysctl another resource or stack also needs
 * stays until the last one goes). The boot unit prepares the host again after a reboot. Refresh reports a removed VIP
 * or a reset sysctl as drift, which `up` heals. A VIP that is one of the host's own addresses (such as its SSH
 * address) is refused.
 */
export class RealServerHost extends pulumi.CustomResource {
  /** The host, credentials included: a secret output. */
  declare public readonly host: pulumi.Output<DirectorState>;
  declare public readonly forwarding: pulumi.Output<"dr" | "tunnel">;
  /** Every VIP prepared (vips, then the services' addresses), as read back: one removed by hand drops out. */
  declare public readonly vips: pulumi.Output<string[]>;
  /** The sysctls set on the host by full name, as read back. */
  declare public readonly sysctls: pulumi.Output<Record<string, number>>;
  /** The stack the host's ledger records: "organization/project/stack". */
  declare public readonly owner: pulumi.Output<string>;

  constructor(name: string, args: RealServerHostArgs, opts?: pulumi.CustomResourceOptions) {
    const { services, ...rest } = args;
    super(
      dynamicType("RealServerHost"),
      name,
      withProviderModule("RealServerHost", {
        vips: undefined, sysctls: undefined, tunnel: undefined,
        ...rest,
        // Only what identifies each service's VIP: the services' directors (and their credentials) stay out of this state.
        ...(services ? { services: services.map((s) => ({ address: s.address, fwmark: s.fwmark })) } : {}),
        owner: stackOwner(),
        resourceUrn: selfUrn(name, "RealServerHost", opts),
        // Credentials must never be plaintext in state (inputs included), even when the program passed them plain.
        host: secretHop(args.host),
      }),
      { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "host"] },
    );
  }
}
