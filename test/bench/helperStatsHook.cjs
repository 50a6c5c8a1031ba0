// Loaded with NODE_OPTIONS=--require into the processes the pulumi CLI starts (by test/bench/run.ts only). In a
// dynamic-provider process that loads pulumi-ipvs's provider (dist/provider/index.js; the floor's never does, so its
// footprint stays its own) it writes, to $PULUMI_IPVS_BENCH_STATS/<pid>.json, the process's peak RSS, for every
// director the provider talks to (recorded by wrapping helperClient/directorOps.directorOps, which entries.ts calls
// through the module's exports) its helperStats(), the time helper round trips took, and how long at least one
// engine call (check, diff, create, …) was running in the provider: busy time well below the round's wall time
// means the provider waited for the engine, not the other way round. A floor process writes its peak RSS only.
// Written after every helper round trip (so the last one is on disk before its results reach the engine, however
// the process ends), every 200 ms and at exit. One file per process, so run.ts adds up exactly the processes one
// pulumi operation started. Product code is not changed; elsewhere it does nothing.
"use strict";
const fs = require("node:fs");
const Module = require("node:module");
const path = require("node:path");

const dir = process.env.PULUMI_IPVS_BENCH_STATS;
const isProvider = process.argv.some((a) => a.includes("dynamic-provider"));
if (dir && isProvider) {
  const dist = path.resolve(__dirname, "../../dist/provider");
  const out = path.join(dir, `${process.pid}.json`);
  const directors = new Map();
  let ops;
  let roundTripMs = 0;
  let busyMs = 0;
  let running = 0;
  let busySince = 0;
  const write = () => {
    const stats = {};
    for (const [k, d] of directors) stats[k] = ops.helperStats(d);
    const busy = busyMs + (running > 0 ? Date.now() - busySince : 0);
    try {
      fs.writeFileSync(out, JSON.stringify({ maxRssKiB: process.resourceUsage().maxRSS, directors: stats, roundTripMs, busyMs: busy }));
    } catch {
      // best effort
    }
  };

  /**
   * Wraps directorOps and the client's round trip as soon as their module is loaded: the providers capture
   * directorOps when index.js builds them (entries.ts's default opsFor), so later is too late.
   */
  const countRoundTrips = () => {
    ops = exportsOf("helperClient/directorOps.js");
    const client = exportsOf("helperClient/client.js"); // loaded by directorOps.js
    const original = ops.directorOps;
    ops.directorOps = function directorOps(d) {
      directors.set(`${d.user}@${d.host}:${d.port}`, d);
      return original.apply(this, arguments);
    };
    const roundTrip = client.HelperClient.prototype.roundTrip;
    client.HelperClient.prototype.roundTrip = async function (...a) {
      const start = Date.now();
      try {
        return await roundTrip.apply(this, a);
      } finally {
        roundTripMs += Date.now() - start;
        write();
      }
    };
  };

  /** Every method of every resource provider (the stored provider module hands the engine these same objects). */
  const timeCalls = (providers) => {
    for (const provider of Object.values(providers)) {
      for (const [name, method] of Object.entries(provider)) {
        if (typeof method !== "function") continue;
        provider[name] = async function (...a) {
          if (running++ === 0) busySince = Date.now();
          try {
            return await method.apply(this, a);
          } finally {
            if (--running === 0) busyMs += Date.now() - busySince;
          }
        };
      }
    }
  };

  // From the module cache, not require(): no load of ours goes through the hook below.
  const loaded = (file) => require.cache[path.join(dist, file)]?.loaded === true;
  const exportsOf = (file) => require.cache[path.join(dist, file)].exports;
  const load = Module._load;
  Module._load = function (...a) {
    const exports = load.apply(this, a);
    if (!ops && loaded("helperClient/directorOps.js")) countRoundTrips();
    if (loaded("index.js")) {
      Module._load = load;
      timeCalls(exportsOf("index.js").providers);
    }
    return exports;
  };
  setInterval(write, 200).unref();
  process.on("exit", write);
}
