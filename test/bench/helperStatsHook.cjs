// Loaded with NODE_OPTIONS=--require into the processes the pulumi CLI starts (by test/bench/run.ts only). In the
// dynamic-provider process it writes, to $PULUMI_IPVS_BENCH_STATS/<pid>.json, the process's peak RSS and, for every
// director the provider talks to (recorded by wrapping helperClient/directorOps.directorOps, which entries.ts calls
// through the module's exports), its helperStats(): after every helper round trip (so the last one is on disk before
// its results reach the engine, however the process ends), every 200 ms and at exit. One file per process, so run.ts
// adds up exactly the processes one pulumi operation started. Product code is not changed; elsewhere it does nothing.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const dir = process.env.PULUMI_IPVS_BENCH_STATS;
const isProvider = process.argv.some((a) => a.includes("dynamic-provider"));
if (dir && isProvider) {
  const ops = require(path.resolve(__dirname, "../../dist/provider/helperClient/directorOps.js"));
  const client = require(path.resolve(__dirname, "../../dist/provider/helperClient/client.js"));
  const out = path.join(dir, `${process.pid}.json`);
  const directors = new Map();
  const original = ops.directorOps;
  ops.directorOps = function directorOps(d) {
    directors.set(`${d.user}@${d.host}:${d.port}`, d);
    return original.apply(this, arguments);
  };
  const write = () => {
    const stats = {};
    for (const [k, d] of directors) stats[k] = ops.helperStats(d);
    try {
      fs.writeFileSync(out, JSON.stringify({ maxRssKiB: process.resourceUsage().maxRSS, directors: stats }));
    } catch {
      // best effort
    }
  };
  const roundTrip = client.HelperClient.prototype.roundTrip;
  client.HelperClient.prototype.roundTrip = async function (...a) {
    try {
      return await roundTrip.apply(this, a);
    } finally {
      write();
    }
  };
  setInterval(write, 200).unref();
  process.on("exit", write);
}
