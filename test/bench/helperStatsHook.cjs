// Loaded with NODE_OPTIONS=--require into the processes the pulumi CLI starts (by test/bench/run.ts only). In the
// dynamic-provider process it writes, to $PULUMI_IPVS_BENCH_STATS every 200 ms and at exit, the process's peak RSS and,
// for every director the provider talks to (recorded by wrapping helperClient/directorOps.directorOps, which entries.ts
// calls through the module's exports), its helperStats(). Product code is not changed; elsewhere the hook does nothing.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const out = process.env.PULUMI_IPVS_BENCH_STATS;
const isProvider = process.argv.some((a) => a.includes("dynamic-provider"));
if (out && isProvider) {
  const hc = require(path.resolve(__dirname, "../../dist/provider/helperClient/directorOps.js"));
  const directors = new Map();
  const original = hc.directorOps;
  hc.directorOps = function directorOps(d) {
    directors.set(`${d.user}@${d.host}:${d.port}`, d);
    return original.apply(this, arguments);
  };
  const write = () => {
    const stats = {};
    for (const [k, d] of directors) stats[k] = hc.helperStats(d);
    try {
      fs.writeFileSync(out, JSON.stringify({ maxRssKiB: process.resourceUsage().maxRSS, directors: stats }));
    } catch {
      // best effort
    }
  };
  setInterval(write, 200).unref();
  process.on("exit", write);
}
