// The ipvs-helper binaries this package ships (provider/helper/bin, with SHA256SUMS) and where they go on a director.
import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";

export type Arch = "amd64" | "arm64";

export interface HelperBinaries {
  /** Directory holding ipvs-helper-linux-<arch> and SHA256SUMS. */
  dir: string;
  /** The package version, part of the install path. */
  version: string;
  sha256: Record<Arch, string>;
}

/** Root of the install tree on a director: root-owned, one directory per helper version and hash. */
export const INSTALL_ROOT = "/usr/local/lib/pulumi-ipvs";

let located: HelperBinaries | undefined;

/** Finds the bundled binaries: the installed package first, then paths relative to this file (dist/ or source). */
export function locateHelper(): HelperBinaries {
  if (located) return located;
  const candidates: string[] = [];
  try {
    candidates.push(path.join(path.dirname(require.resolve("pulumi-ipvs/package.json")), "provider/helper/bin"));
  } catch {
    // Not resolvable by name (e.g. running from a checkout under another name): fall back to relative paths.
  }
  candidates.push(path.resolve(__dirname, "../../../provider/helper/bin"), path.resolve(__dirname, "../helper/bin"));
  const dir = candidates.find((d) => existsSync(path.join(d, "SHA256SUMS")));
  if (!dir) {
    throw new Error(`ipvs-helper binaries not found (looked in ${candidates.join(", ")}); run npm run build to build provider/helper/bin.`);
  }
  const sums = new Map<string, string>();
  for (const line of readFileSync(path.join(dir, "SHA256SUMS"), "utf8").split("\n")) {
    const m = /^([0-9a-f]{64})\s+\*?(\S+)$/.exec(line.trim());
    if (m) sums.set(path.basename(m[2]!), m[1]!);
  }
  const sha = (arch: Arch) => {
    const s = sums.get(`ipvs-helper-linux-${arch}`);
    if (!s) throw new Error(`${dir}/SHA256SUMS has no line for ipvs-helper-linux-${arch}; run npm run build.`);
    return s;
  };
  const pkg = JSON.parse(readFileSync(path.resolve(dir, "../../../package.json"), "utf8")) as { version: string };
  located = { dir, version: pkg.version, sha256: { amd64: sha("amd64"), arm64: sha("arm64") } };
  return located;
}

/** A release version as npm writes it (semver, no build metadata): the only characters a path component may take here. */
const VERSION = /^\d{1,9}\.\d{1,9}\.\d{1,9}(-[0-9A-Za-z.-]{1,64})?$/;
const SHA256 = /^[0-9a-f]{64}$/;

/**
 * The helper's path on a director. Its parts end up in root scripts and name directories root creates, so the version
 * and the hash are checked against strict patterns here, where the path is built, and never trusted as they come
 * (package.json and SHA256SUMS are read from disk). The scripts quote the path as well.
 */
export function installPath(bins: HelperBinaries, arch: Arch): string {
  const sha = bins.sha256[arch];
  if (!VERSION.test(bins.version) || bins.version.includes(".."))
    throw new Error(`refusing the ipvs-helper version ${JSON.stringify(bins.version)}: a version must look like 1.2.3 or 1.2.3-rc.1`);
  if (!SHA256.test(sha)) throw new Error(`refusing the ipvs-helper ${arch} hash ${JSON.stringify(sha)}: a SHA-256 is 64 lowercase hex digits`);
  return `${INSTALL_ROOT}/${bins.version}-${sha.slice(0, 12)}/ipvs-helper`;
}
