// vitest globalSetup for the lab, integration and e2e projects: builds the director image once (progress on stderr)
// and, at teardown, kills every director this run started, whatever the tests did.
import { randomUUID } from "node:crypto";
import { IMAGE_ENV, RUN_ENV } from "./director";
import { ensureImage } from "./image";
import { killVm, listVms } from "./vm";

export default async function setup(): Promise<() => Promise<void>> {
  const image = await ensureImage((line) => process.stderr.write(`${line}\n`));
  const runId = randomUUID();
  // Workers inherit the environment: startDirector() uses this image and tags its VMs with this run.
  process.env[IMAGE_ENV] = image.dir;
  process.env[RUN_ENV] = runId;
  return async () => {
    for (const vm of listVms().filter((v) => v.runId === runId)) await killVm(vm);
  };
}
