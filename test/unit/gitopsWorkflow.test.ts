// Issue 25 item 5: the GitOps example's workflow hands no production secret to pull-request code. Checked on the
// parsed YAML: no secret at workflow level or in the job a pull request runs, the production secrets only in jobs of
// the protected environment, every action pinned by a full commit SHA.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { describe, expect, it } from "vitest";

// The YAML parser @pulumi/pulumi itself uses (for Pulumi.yaml): no dependency of our own for one test.
const { load } = createRequire(require.resolve("@pulumi/pulumi"))("js-yaml") as { load(text: string): unknown };

const FILE = path.resolve(__dirname, "../../examples/gitops/.github/workflows/ipvs.yml");
const TEXT = readFileSync(FILE, "utf8");

interface Step {
  uses?: string;
  run?: string;
  env?: Record<string, string>;
  with?: Record<string, unknown>;
}
interface Job {
  if?: string;
  environment?: string | { name: string };
  env?: Record<string, string>;
  steps: Step[];
}
interface Workflow {
  on: Record<string, unknown>;
  env?: Record<string, string>;
  permissions?: Record<string, string>;
  jobs: Record<string, Job>;
}

const workflow = load(TEXT) as Workflow;
const jobs = Object.entries(workflow.jobs);
/** Every secret a piece of the workflow names (`${{ secrets.X }}`), also inside expressions. */
const secretsIn = (v: unknown): string[] => [...JSON.stringify(v ?? null).matchAll(/secrets\.([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]!);
const environmentOf = (j: Job) => (typeof j.environment === "string" ? j.environment : j.environment?.name);
/** The job a pull_request event runs: its `if` names pull_request, or it has no `if` at all. */
const runsOnPullRequest = (j: Job) => j.if === undefined || /pull_request/.test(j.if);

describe("examples/gitops workflow", () => {
  it("runs on pull requests, pushes to main and a schedule, with read-only repository access", () => {
    expect(Object.keys(workflow.on).sort()).toEqual(["pull_request", "push", "schedule"]);
    expect(workflow.permissions).toEqual({ contents: "read" });
  });

  it("names no secret at workflow level", () => {
    expect(secretsIn(workflow.env)).toEqual([]);
    expect(secretsIn({ ...workflow, jobs: undefined })).toEqual([]);
  });

  it("gives the pull-request job no secret and no environment, and a throw-away backend and passphrase", () => {
    const pr = jobs.filter(([, j]) => runsOnPullRequest(j));
    expect(pr.map(([name]) => name)).toEqual(["preview"]);
    const [, job] = pr[0]!;
    expect(secretsIn(job)).toEqual([]);
    expect(job.environment).toBeUndefined();
    const script = job.steps.map((s) => s.run ?? "").join("\n");
    expect(script).toContain(`PULUMI_BACKEND_URL="file://$RUNNER_TEMP/`);
    expect(script).toMatch(/PULUMI_CONFIG_PASSPHRASE="\$\(openssl rand /);
    expect(script).toMatch(/gitops\.ts preview --stack preview/);
  });

  it("uses the production secrets only in jobs of the protected environment, which pull requests never run", () => {
    const withSecrets = jobs.filter(([, j]) => secretsIn(j).length > 0);
    expect(withSecrets.map(([name]) => name).sort()).toEqual(["apply", "drift"]);
    for (const [, job] of withSecrets) {
      expect(environmentOf(job)).toBe("ipvs-prod");
      expect(runsOnPullRequest(job)).toBe(false);
      expect(job.if).toMatch(/^github\.event_name == '(push|schedule)'$/);
    }
  });

  it("pins every action by a full commit SHA, with its tag in a comment", () => {
    const uses = jobs.flatMap(([, j]) => j.steps.flatMap((s) => (s.uses ? [s.uses] : [])));
    expect(uses.length).toBeGreaterThanOrEqual(9);
    for (const u of uses) expect(u).toMatch(/^[\w.-]+\/[\w.-]+@[0-9a-f]{40}$/);
    for (const line of TEXT.split("\n").filter((l) => /^\s*- uses:/.test(l))) expect(line).toMatch(/@[0-9a-f]{40} # v\d+\.\d+\.\d+$/);
  });

  it("keeps the checkout's token out of the working tree", () => {
    for (const [, j] of jobs)
      for (const s of j.steps.filter((s) => s.uses?.startsWith("actions/checkout@"))) expect(s.with?.["persist-credentials"]).toBe(false);
  });
});
