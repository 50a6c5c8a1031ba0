// Progress lines in `pulumi up`'s output, from inside the engine's dynamic-provider process.
//
// What the engine offers (pulumi 3.248, checked by test/e2e/drainProgress.test.ts): it starts that process with its
// own gRPC address as the first argument, and a pulumirpc.Engine/Log call there becomes a diagnostic event — shown on
// the resource's row when it names the resource's URN, on the stack's row otherwise, in interactive and
// non-interactive output alike. An ephemeral one is a status: shown while it is current, left out of the closing
// "Diagnostics:" summary. (console.log/console.error of the provider process reach the output too, but only as
// permanent stack diagnostics: no status, no resource.) Outside that process (tests, the status CLI) nothing is sent.
import { createRequire } from "node:module";

export interface ProgressReport {
  message: string;
  /** The resource the line is about; without it the line shows on the stack's row. */
  urn?: string;
  /** A status while waiting (not kept in the summary), or a line the summary keeps. */
  ephemeral: boolean;
  severity: "info" | "warning";
}

/** A Log call is a local round trip; past this the line is dropped rather than holding anything up. */
const LOG_DEADLINE_MS = 2000;
/** pulumirpc.LogSeverity. */
const SEVERITY = { info: 1, warning: 2 } as const;

interface EngineLog {
  send(report: ProgressReport): Promise<void>;
}

/** undefined: not tried yet; null: not in the engine's provider process, or its gRPC libraries did not load. */
let engine: EngineLog | null | undefined;

/**
 * Shows `report` in the running pulumi operation. Resolves once the engine has it or after LOG_DEADLINE_MS; never
 * rejects. Messages are shown to whoever reads the output: nothing secret in them.
 */
export async function reportProgress(report: ProgressReport): Promise<void> {
  try {
    if (engine === undefined) {
      engine = null; // tried once: a process that cannot load the client does not retry on every line
      engine = connect();
    }
    await engine?.send(report);
  } catch {
    // Progress is a courtesy: a failure to show it must never fail or stall the operation it describes.
  }
}

function connect(): EngineLog | null {
  // The engine runs `node …/@pulumi/pulumi/cmd/dynamic-provider/index.js <engine address>`.
  const script = process.argv[1] ?? "";
  const address = process.argv[2] ?? "";
  if (!/[\\/]cmd[\\/]dynamic-provider(?:[\\/]index(?:\.js)?)?$/.test(script) || !/^[\w.[\]:-]+:\d+$/.test(address)) return null;
  // Loaded from the SDK's own dependencies (it runs this very process), so the generated client and grpc-js are the
  // SDK's instances whatever the install layout.
  const sdkRequire = createRequire(require.resolve("@pulumi/pulumi"));
  const grpc = sdkRequire("@grpc/grpc-js");
  const pb = sdkRequire("@pulumi/pulumi/proto/engine_pb");
  const { EngineClient } = sdkRequire("@pulumi/pulumi/proto/engine_grpc_pb");
  const client: { log(req: unknown, md: unknown, opts: { deadline: number }, cb: () => void): void } = new EngineClient(
    address,
    grpc.credentials.createInsecure(),
  );
  return {
    send: (report) =>
      new Promise<void>((resolve) => {
        const req = new pb.LogRequest();
        req.setSeverity(SEVERITY[report.severity]);
        req.setMessage(report.message);
        req.setUrn(report.urn ?? "");
        req.setEphemeral(report.ephemeral);
        // The callback always comes, at the latest with DEADLINE_EXCEEDED; an error only loses this line.
        client.log(req, new grpc.Metadata(), { deadline: Date.now() + LOG_DEADLINE_MS }, () => resolve());
      }),
  };
}
