// What the engine's Node dynamic-provider plugin does with a production resource's stored `__provider`: it evaluates
// the text with its own require-from-string from the program directory and calls `handler()`. Run in a plain Node
// process (tsx) from the repo root, where `pulumi-ipvs/provider` resolves to this package as in a user's program.
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { repoRoot } from "./harness";

const script = `
const requireFromString = require(require.resolve("require-from-string", { paths: [require.resolve("@pulumi/pulumi")] }));
const { providerModule } = require("./src/shim.ts");
const stored = providerModule("VirtualService");
const provider = requireFromString(stored).handler();
const installed = require("pulumi-ipvs/provider").providers.VirtualService;
process.stdout.write(JSON.stringify({ stored, same: provider === installed, methods: Object.keys(provider).sort() }));
`;

describe("the stored provider module", () => {
  it("loads the installed package's provider in the plugin's own way, and holds nothing else", () => {
    const out = JSON.parse(execFileSync(process.execPath, ["--import", "tsx", "-e", script], { cwd: repoRoot, encoding: "utf8" }));
    console.log(`__provider of a VirtualService:\n${out.stored}`);
    expect(out.same).toBe(true);
    expect(out.methods).toEqual(["check", "create", "delete", "diff", "read", "update"]);
    // Nothing of the provider implementation, its dependencies or the program is copied into state.
    expect(out.stored).not.toMatch(/zod|node-ssh|ssh2|readFileSync|privateKey|password/);
  });
});
