// The one source of truth for every resource's input rules (ipvsadm's rules, reference/ipvs-netlink.md §4,
// plus the SSH connection rules), by section: unknown.ts (preview's unknown values), values.ts (leaf values, defaults),
// fields.ts (field tables), director.ts, provider/resources/<name>/schema.ts (each resource's table and rules), models.ts
// (the normalised types), check.ts (check and parse). check() and diff() run at preview and must stay pure: nothing
// here opens a connection or reads a file. The mapping to the helper's vocabulary is each resource's wire.ts.
export { checkRealServer, checkVirtualService, formatPath, parseRealServer, parseVirtualService, type CheckFailure, type CheckResult } from "./check";
export { directorSchema, directorsSchema, sshEndpointSchema, upgradeState } from "./director";
export { parseOpenSshPublicKey } from "../session/hostKeys";
export type { FieldRole } from "./fields";
export { REAL_SERVER_KEYS, REAL_SERVER_SETTINGS, realServerSchema } from "../resources/realServer/schema";
export {
  checkRealServerPool,
  parseRealServerPool,
  REAL_SERVER_POOL_KEYS,
  REAL_SERVER_POOL_SETTINGS,
  type PoolMemberModel,
  type RealServerPoolChecked,
  type RealServerPoolModel,
} from "../resources/realServerPool/schema";
export type * from "./models";
export { isUnknown, UNKNOWN, type Checked, type Known, type Unknown } from "./unknown";
export {
  DEFAULTS,
  FAMILIES,
  FORWARDING,
  parseIp,
  PROTOCOLS,
  SCHEDULER_FLAGS,
  SCHEDULERS,
  TUNNEL_CHECKSUMS,
  TUNNEL_TYPES,
  type Family,
  type Forwarding,
  type Scheduler,
  type TransportProtocol,
  type TunnelChecksum,
  type TunnelType,
} from "./values";
export { SERVICE_IDENTITY, VIRTUAL_SERVICE_KEYS, VIRTUAL_SERVICE_SETTINGS, virtualServiceSchema } from "../resources/virtualService/schema";
export type { SchedulerFlag } from "../protocol";
export {
  checkDirectorSettings,
  DAEMON_STATES,
  DIRECTOR_SETTINGS_KEYS,
  MAX_TIMEOUT_SECONDS,
  parseDirectorSettings,
  type DaemonState,
  type DirectorSettingsChecked,
  type DirectorSettingsModel,
  type IpForwardModel,
  type SyncDaemonModel,
  type SysctlsModel,
  type TimeoutsModel,
} from "../resources/directorSettings/schema";
export { ALL_SYSCTLS, canonicalCpuList, IP_FORWARD, SYSCTLS, type SysctlDef, type SysctlField, type SysctlKind } from "../resources/directorSettings/sysctls";
