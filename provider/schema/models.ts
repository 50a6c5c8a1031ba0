// The normalised, fully known forms that create / update / read work with, checked at compile time against what the
// schemas produce. One word, one meaning: a *Model is this normalised form; a *Spec is a wire record, a key and its
// settings as the helper takes them (provider/protocol.ts ServiceSpec, DestSpec); a *Record is what the helper's ledger
// keeps (Go).
import type { z } from "zod";
import type { Director } from "../director";
import type { SchedulerFlag } from "../protocol";
import type { directorSchema } from "./director";
import type { realServerSchema } from "../resources/realServer/schema";
import type { Known } from "./unknown";
import type { DestModel } from "../resources/realServer/fields";
import type { Family, Forwarding, Scheduler, TransportProtocol } from "./values";
import type { HealthCheckModel } from "./health";
import type { SERVICE_IDENTITY, virtualServiceSchema } from "../resources/virtualService/schema";

export type VirtualServiceChecked = z.output<typeof virtualServiceSchema>;
export type RealServerChecked = z.output<typeof realServerSchema>;

/** A service's kernel identity. */
export type ServiceIdentity = { family: Family } & (
  | { protocol: TransportProtocol; address: string; port: number; fwmark?: undefined }
  | { fwmark: number; protocol?: undefined; address?: undefined; port?: undefined }
);

export interface PersistenceModel {
  /** Seconds, 1..2678400. */
  timeout: number;
  /** IPv4: dotted mask; IPv6: prefix length as a string ("128"). */
  netmask: string;
  engine?: "sip";
}

/** Who the directors' ownership ledger records as the entry's owner (absent: state from before the ledger). */
export interface OwnershipModel {
  owner?: string;
  /** Ensure may take the entry from the stack that owns it. */
  takeover: boolean;
}

/** Facts about the Pulumi resource itself ("engine" fields): not settings; diff only notices a rename (diff.ts renamed()). */
export interface EngineModel {
  /** The resource's URN: progress messages and the holder the ledger records (absent in state written before it). */
  resourceUrn?: string;
}

export interface DrainModel {
  timeoutSeconds: number;
}

export type VirtualServiceModel = ServiceIdentity & {
  directors: Director[];
  scheduler: Scheduler;
  schedulerFlags: SchedulerFlag[];
  persistence?: PersistenceModel;
  onePacket: boolean;
  /** Where the VIP goes on the directors (ensureService bindAddress); false: another tool places it. */
  bindAddress: boolean | { interface: string };
  /** Drain the service's real servers before it leaves a director. */
  drain?: DrainModel;
  adopt: boolean;
  /** Removing the service may delete real servers this stack does not own (deleteService withForeignDests). */
  deleteForeignRealServers: boolean;
  /** The default check of its real servers (each resolves the one in effect: provider/schema/health.ts). */
  healthCheck?: HealthCheckModel;
  /** A count of real servers, or "NN%" of the checked ones, kept pooled whatever their checks say. */
  minHealthy: number | string;
  sorryServer?: SorryServerModel;
} & OwnershipModel &
  EngineModel;

/** The real server added (weight 1) while none of a service's checked real servers is healthy; port resolved. */
export interface SorryServerModel {
  address: string;
  port: number;
  forwarding: Forwarding;
}

/** The `service` input of a RealServer, fully known: its VirtualService's identity and directors, and its default check. */
export type ServiceRefModel = ServiceIdentity & { directors: Director[]; healthCheck?: HealthCheckModel };

/** A RealServer: its own fields (the table in provider/resources/realServer/fields.ts), its service, and how it is removed. */
export type RealServerModel = DestModel &
  OwnershipModel &
  EngineModel & {
    service: ServiceRefModel;
    drain?: DrainModel;
    adopt: boolean;
  };

// The hand-written types above must accept what the schemas produce once every value is known, and the identity type
// must have exactly the identity fields of the field table (compile-time checks).
type Assert<T extends true> = T;
type Fits<A, B> = [A] extends [B] ? true : false;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Identity = (typeof SERVICE_IDENTITY)[number];
export type _IdentityIsTheTable = Assert<Same<keyof ServiceIdentity, Identity>>;
export type _DirectorFits = Assert<Fits<Known<z.output<typeof directorSchema>>, Director>>;
// Identity fields are left out: their presence is guaranteed by the rules (refinements), which types cannot see.
export type _VirtualServiceFits = Assert<Fits<Omit<Known<VirtualServiceChecked>, Identity>, Omit<VirtualServiceModel, Identity>>>;
export type _RealServerFits = Assert<Fits<Omit<Known<RealServerChecked>, "service" | "port">, Omit<RealServerModel, "service" | "port">>>;
