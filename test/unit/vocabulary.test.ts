// The provider's enum tables and the helper's are written in two languages; this checks they agree, against the
// helper binary itself (`ipvs-helper names` needs no kernel, so it runs on the build host; npm test builds it first).
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { ALL_SYSCTLS, DEFAULTS, FORWARDING, SCHEDULER_FLAGS, SCHEDULERS, TUNNEL_CHECKSUMS, TUNNEL_TYPES } from "../../provider/schema";

const HELPER = path.resolve(__dirname, "../../provider/helper/bin/ipvs-helper-linux-amd64");

describe("the provider's vocabulary is the helper's", () => {
  it("schedulers, scheduler flags, forwarding, tunnel types and checksums, the default scheduler", () => {
    expect(existsSync(HELPER), `${HELPER} is missing: run npm run build`).toBe(true);
    const names = JSON.parse(execFileSync(HELPER, ["names"], { encoding: "utf8" })) as Record<string, unknown>;
    const sorted = (xs: readonly string[]) => [...xs].sort();
    expect(sorted(names.schedulers as string[])).toEqual(sorted(SCHEDULERS));
    expect(sorted(names.schedulerFlags as string[])).toEqual(sorted(SCHEDULER_FLAGS));
    expect(sorted(names.forwarding as string[])).toEqual(sorted(FORWARDING));
    expect(sorted(names.tunnelTypes as string[])).toEqual(sorted(TUNNEL_TYPES));
    expect(sorted(names.tunnelChecksums as string[])).toEqual(sorted(TUNNEL_CHECKSUMS));
    expect(names.defaults).toEqual({ scheduler: DEFAULTS.scheduler });
  });

  it("the sysctls DirectorSettings may set: names, kinds, ranges and rules", () => {
    const names = JSON.parse(execFileSync(HELPER, ["names"], { encoding: "utf8" })) as { sysctls: Record<string, unknown>[] };
    const ours = ALL_SYSCTLS.map(({ name, kind, min, max, powerOfTwo, defense }) => ({
      name, kind, min, max, ...(powerOfTwo ? { powerOfTwo } : {}), ...(defense ? { defense } : {}),
    })).sort((a, b) => (a.name < b.name ? -1 : 1));
    expect(names.sysctls).toEqual(ours);
  });
});
