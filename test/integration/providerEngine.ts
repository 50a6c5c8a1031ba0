// Drives the dynamic providers the way the Node dynamic-provider plugin and the engine do, without the engine:
// check(oldInputs, news) → create(checked inputs) / diff(id, state, checked) → update(id, state, checked) → read(id, state)
// → delete(id, state). Every value crosses a protobuf Struct between the engine and the plugin, so it is JSON round
// tripped here too (undefined dropped), and `__provider` rides along as the plugin adds it.
import { expect } from "vitest";
import type * as dynamic from "@pulumi/pulumi/dynamic";
import { providers } from "../../provider/index";
import type { Director } from "../../provider/director";
import { forgetTables } from "../../provider/helperClient";
import type { LabDirector } from "../lab/director";

export type Props = Record<string, unknown>;
export type Kind = "VirtualService" | "RealServer";

/** Stands in for the provider module the engine keeps in state (src/shim.ts). */
export const PROVIDER = "exports.handler = __fakeSerializedProvider;";

export const roundTrip = <T>(v: T): T => JSON.parse(JSON.stringify(v ?? {})) as T;

/** A resource as the engine holds it: id, last inputs (checked) and state (outputs + __provider). */
export interface Managed {
  kind: Kind;
  id: string;
  inputs: Props;
  state: Props;
}

/** How a Pulumi program would reach a lab director as ops (sudo) with a pinned host key. */
export function labDirector(d: LabDirector, extra: Props = {}): Props {
  return { host: d.host, port: d.port, user: "ops", privateKeyPath: d.privateKeyPath, hostKey: d.hostKey, ...extra };
}

/** A parsed Director for the lab director as ops (sudo), for tests that use the session and helper client directly. */
export function sessionDirector(d: LabDirector, extra: Partial<Director> = {}): Director {
  return {
    host: d.host, port: d.port, user: "ops", privateKeyPath: d.privateKeyPath, hostKey: d.hostKey, sudo: true,
    connectTimeoutSeconds: 20, operationTimeoutSeconds: 60, ...extra,
  };
}

/** The helper's command line as a case-pattern prefix: the start script execs the descriptor it verified. */
export const HELPER_SERVE = "/proc/self/fd/3\\ serve";

/** check() as the plugin calls it; fails the test on check failures. */
export async function check(kind: Kind, olds: Props | undefined, args: Props): Promise<Props> {
  const news = roundTrip({ ...args, __provider: PROVIDER });
  const r = await providers[kind]!.check!(roundTrip(olds ?? {}), news);
  expect(r.failures ?? []).toEqual([]);
  return roundTrip({ ...(r.inputs as Props), __provider: PROVIDER });
}

export async function create(kind: Kind, args: Props): Promise<Managed> {
  const inputs = await check(kind, undefined, args);
  const r = await providers[kind]!.create(roundTrip(inputs));
  return { kind, id: r.id, inputs, state: roundTrip({ ...r.outs, __provider: PROVIDER }) };
}

/** create() expected to fail: returns the thrown error (message, and id/properties for an init failure). */
export async function createFails(kind: Kind, args: Props): Promise<Error & { id?: string; properties?: Props; reasons?: string[] }> {
  const inputs = await check(kind, undefined, args);
  const err = await providers[kind]!.create(roundTrip(inputs)).then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  expect(err, `${kind} create should have failed`).toBeInstanceOf(Error);
  return err!;
}

/** diff against state, then update in place (a replacing diff fails the test: these tests are about in-place updates). */
export async function diff(r: Managed, args: Props): Promise<{ inputs: Props; diff: dynamic.DiffResult }> {
  const inputs = await check(r.kind, r.inputs, args);
  const d = await providers[r.kind]!.diff!(r.id, roundTrip(r.state), roundTrip(inputs));
  return { inputs, diff: d };
}

export async function update(r: Managed, args: Props): Promise<Managed> {
  const { inputs, diff: d } = await diff(r, args);
  expect(d.replaces ?? []).toEqual([]);
  expect(d.changes).toBe(true);
  const u = await providers[r.kind]!.update!(r.id, roundTrip(r.state), roundTrip(inputs));
  return { ...r, inputs, state: roundTrip({ ...u.outs, __provider: PROVIDER }) };
}

/** update() expected to fail (partial failure): returns the error; the engine would record error.properties as state. */
export async function updateFails(r: Managed, args: Props): Promise<{ err: Error & { id?: string; properties?: Props }; inputs: Props }> {
  const { inputs } = await diff(r, args);
  const err = await providers[r.kind]!.update!(r.id, roundTrip(r.state), roundTrip(inputs)).then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  expect(err, `${r.kind} update should have failed`).toBeInstanceOf(Error);
  return { err: err!, inputs };
}

/** refresh: read(id, state). Returns the new id ("" = gone) and props. */
export async function read(r: Pick<Managed, "kind" | "id" | "state">): Promise<{ id: string; props?: Props }> {
  // Each refresh is a new provider process, whose reads share one table dump per director: these tests edit the
  // director out of band between reads in one process, so each read starts from a fresh dump.
  forgetTables();
  const res = await providers[r.kind]!.read!(r.id, roundTrip(r.state));
  return { id: res.id ?? "", props: res.props ? roundTrip(res.props) : undefined };
}

export async function destroy(r: Pick<Managed, "kind" | "id" | "state">): Promise<void> {
  await providers[r.kind]!.delete!(r.id, roundTrip(r.state));
}

/** The `service` input a RealServer gets from its VirtualService's outputs. */
export function serviceRef(vs: Managed): Props {
  const s = vs.state;
  return roundTrip({ directors: s.directors, family: s.family, protocol: s.protocol, address: s.address, port: s.port, fwmark: s.fwmark });
}

/** The promise's error, or a test failure when it resolves. */
export async function rejection(p: Promise<unknown>): Promise<Error & Props> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  expect(err, "expected a failure").toBeInstanceOf(Error);
  return err as Error & Props;
}

/** `ipvsadm -Sn` lines, without blank ones. */
export const lines = (save: string): string[] => save.split("\n").filter((l) => l.trim() !== "");
