// Shared inputs for the unit tests of provider/schema/, the resources' diffs and provider/identity.ts.
import { expect } from "vitest";
import type { CheckResult } from "../../provider/schema";

export const U = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** A syntactically real OpenSSH public key line (the blob repeats the key type, as real keys do). */
export function publicKeyLine(type = "ssh-ed25519", comment = "root@director"): string {
  const t = Buffer.from(type);
  const blob = Buffer.concat([Buffer.from([0, 0, 0, t.length]), t, Buffer.from([0, 0, 0, 32]), Buffer.alloc(32, 7)]);
  return `${type} ${blob.toString("base64")} ${comment}`;
}

export const PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";

export function director(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { host: "203.0.113.5", user: "ops", privateKey: PRIVATE_KEY, hostKey: publicKeyLine(), ...over };
}

export function vs(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { directors: [director()], protocol: "tcp", address: "192.0.2.10", port: 80, ...over };
}

export function fwmarkVs(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { directors: [director()], fwmark: 7, ...over };
}

/** The `service` input a RealServer resource passes: resolved directors and identity of its VirtualService. */
export function serviceRef(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { directors: [director()], family: "ipv4", protocol: "tcp", address: "192.0.2.10", port: 80, ...over };
}

export function rs(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { service: serviceRef(), address: "10.0.0.11", port: 8080, ...over };
}

export function expectOk<T>(r: CheckResult<T>): T {
  expect(r.failures).toEqual([]);
  return r.inputs;
}

/** Exactly one failure, at `property`, whose reason matches `reason`. */
export function expectFailure(r: CheckResult<unknown>, property: string, reason: RegExp): void {
  expect(r.failures).toHaveLength(1);
  expect(r.failures[0]!.property).toBe(property);
  expect(r.failures[0]!.reason).toMatch(reason);
}
