// pulumi-ipvs: Linux IPVS (LVS) virtual services and real servers as Pulumi resources, applied over SSH.
export type { DirectorArgs, SshConnectionArgs } from "./director";
export { RealServer } from "./realServer";
export type {
  DrainArgs,
  Family,
  Forwarding,
  PersistenceArgs,
  RealServerArgs,
  Scheduler,
  SchedulerFlag,
  TransportProtocol,
  TunnelArgs,
  VirtualServiceArgs,
  VirtualServiceRef,
} from "./types";
export { VirtualService, type DirectorState } from "./virtualService";
