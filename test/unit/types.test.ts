// The README's TypeScript snippets and a config-driven program compile as users would write them: against the
// package's own types ("pulumi-ipvs" mapped to src/, so no build is needed), with the project's strict settings.
import { readFileSync } from "node:fs";
import * as path from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(__dirname, "../..");

/** Every ```ts block of the README, in order. */
function readmeSnippets(): string[] {
  const md = readFileSync(path.join(ROOT, "README.md"), "utf8");
  return [...md.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/** Type-checks in-memory files placed under test/types/ (so node_modules resolves); returns the diagnostics as text. */
function typeCheck(files: Record<string, string>): string[] {
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.CommonJS,
    moduleResolution: ts.ModuleResolutionKind.Node10,
    lib: ["lib.es2022.d.ts"],
    types: ["node"],
    strict: true,
    esModuleInterop: true,
    skipLibCheck: true,
    noEmit: true,
    baseUrl: ROOT,
    paths: { "pulumi-ipvs": ["src/index.ts"] },
  };
  const host = ts.createCompilerHost(options);
  const virtual = new Map(Object.entries(files).map(([name, text]) => [path.join(ROOT, "test/types", name), text]));
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) =>
    virtual.has(name) ? ts.createSourceFile(name, virtual.get(name)!, lang) : getSourceFile(name, lang, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => virtual.has(name) || fileExists(name);
  const readFile = host.readFile.bind(host);
  host.readFile = (name) => virtual.get(name) ?? readFile(name);
  const program = ts.createProgram([...virtual.keys()], options, host);
  return ts
    .getPreEmitDiagnostics(program)
    .map((d) => `${d.file ? path.relative(ROOT, d.file.fileName) : ""}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`);
}

describe("types as users meet them", () => {
  it("the README has TypeScript snippets", () => {
    expect(readmeSnippets().length).toBeGreaterThan(0);
  });

  it("every README snippet and the config-driven program compile", () => {
    const files: Record<string, string> = {
      "configDriven.ts": readFileSync(path.join(ROOT, "test/types/configDriven.ts"), "utf8"),
    };
    // Each snippet is its own module; "…" in the README stands for elided text inside strings only.
    readmeSnippets().forEach((s, i) => (files[`readme-${i + 1}.ts`] = `${s}\nexport {};\n`));
    expect(typeCheck(files)).toEqual([]);
  }, 60_000);

  it("a misspelt field still fails to compile (the check above can fail)", () => {
    const bad = `import * as ipvs from "pulumi-ipvs";\nnew ipvs.VirtualService("x", { directors: [], adress: "192.0.2.1" });\n`;
    expect(typeCheck({ "bad.ts": bad }).join("\n")).toMatch(/adress/);
  }, 60_000);
});
