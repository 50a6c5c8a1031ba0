// pulumi-ipvs: Linux IPVS (LVS) virtual services and real servers as Pulumi resources, applied over SSH.
export type { DirectorArgs, DirectorState, SshConnectionArgs } from "./director";
export { RealServer } from "./realServer";
export type {
  DrainArgs,
  DrainState,
  Family,
  Forwarding,
  OneOf,
  PersistenceArgs,
  PersistenceState,
  RealServerArgs,
  Scheduler,
  SchedulerFlag,
  ServiceRefState,
  TransportProtocol,
  TunnelArgs,
  TunnelChecksum,
  TunnelState,
  TunnelType,
  VirtualServiceArgs,
  VirtualServiceRef,
} from "./types";
export { VirtualService } from "./virtualService";
