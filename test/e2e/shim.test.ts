// What Pulumi stores for a production resource's provider: serializeFunction over providerShim("VirtualService"), the
// same call `new dynamic.Resource` makes. It runs in a plain Node process (tsx), not in vitest's module runner, so the
// closure serializer sees ordinary CommonJS code as it does in a Pulumi program.
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { repoRoot } from "./harness";

const script = `
const pulumi = require("@pulumi/pulumi");
const { providerShim } = require("./src/shim.ts");
const provider = providerShim("VirtualService");
pulumi.runtime.serializeFunction(() => provider).then(
  (s) => process.stdout.write(s.text),
  (err) => { console.error(err); process.exit(1); },
);
`;

describe("providerShim serialization", () => {
  it("captures only the kind and the package name, and requires the package when a method runs", () => {
    const text = execFileSync(process.execPath, ["--import", "tsx", "-e", script], { cwd: repoRoot, encoding: "utf8" });
    console.log(`serialized providerShim("VirtualService"):\n${text}`);
    expect(text).toContain('moduleName: "pulumi-ipvs/provider"');
    expect(text).toContain('kind: "VirtualService"');
    expect(text).toContain("require(moduleName)");
    for (const method of ["check", "diff", "create", "read", "update", "delete"]) {
      expect(text).toMatch(new RegExp(`\\b${method}: __f\\d+`));
    }
    // Nothing of the provider implementation or its dependencies is copied into state.
    expect(text).not.toMatch(/zod|node-ssh|NodeSSH|ssh2|readFileSync|privateKey|password/);
    // Every captured value is one of the two strings or a shim function: no objects from the program.
    const captured = [...text.matchAll(/with\(\{ (.*?), this: undefined/g)].flatMap((m) => m[1].split(", "));
    for (const entry of captured) {
      expect(entry).toMatch(/^(moduleName: "pulumi-ipvs\/provider"|kind: "VirtualService"|load: __f\d+|provider: __provider)$/);
    }
  });
});
