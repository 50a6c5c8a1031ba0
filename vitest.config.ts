import { defineConfig } from "vitest/config";

// Projects: unit = pure code, no VM; lab = tests against a real director VM (test/lab); integration = provider code
// against a lab director; e2e = the real pulumi CLI against a lab director. The lab global setup builds the VM image once
// and makes sure no qemu process outlives the run.
const labSetup = ["test/lab/globalSetup.ts"];

export default defineConfig({
  test: {
    projects: [
      // Unit tests assert behaviour, not speed (that is `npm run bench`): a 2,000-member pool under a loaded
      // machine may take longer than vitest's 5 s default without anything being wrong.
      { test: { name: "unit", include: ["test/unit/**/*.test.ts"], testTimeout: 60_000 } },
      {
        test: {
          name: "lab",
          include: ["test/lab/**/*.test.ts"],
          globalSetup: labSetup,
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          globalSetup: labSetup,
          testTimeout: 300_000,
          hookTimeout: 180_000,
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          globalSetup: labSetup,
          testTimeout: 600_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
