// pulumi-ipvs: Linux IPVS (LVS) virtual services and real servers as Pulumi resources, applied over SSH.
export type { DirectorArgs, DirectorState, SshConnectionArgs } from "./director";
export { DirectorSettings } from "./directorSettings";
export { RealServer } from "./realServer";
export { RealServerPool } from "./realServerPool";
export type {
  DirectorSettingsArgs,
  DrainArgs,
  DrainState,
  Family,
  Forwarding,
  IpForwardArgs,
  IpForwardState,
  FtpArgs,
  FtpState,
  IpvsTimeoutsArgs,
  IpvsTimeoutsState,
  OneOf,
  PersistenceArgs,
  PersistenceState,
  RealServerArgs,
  RealServerPoolArgs,
  RealServerPoolMemberArgs,
  RealServerPoolMemberState,
  RealServerSettingsArgs,
  Scheduler,
  SchedulerFlag,
  ServiceRefState,
  SyncDaemonArgs,
  SyncDaemonState,
  SyncThresholdArgs,
  SyncThresholdState,
  SysctlsArgs,
  SysctlsState,
  TransportProtocol,
  TunnelArgs,
  TunnelChecksum,
  TunnelState,
  TunnelType,
  VirtualServiceArgs,
  VirtualServiceRef,
} from "./types";
export { VirtualService } from "./virtualService";
