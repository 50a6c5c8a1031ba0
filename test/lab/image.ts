// The lab director image: built once by image/build-image.sh into the lab cache directory (outside the repo), keyed by
// the build inputs (script + rootfs overlay) and the exact Debian package versions, so it is rebuilt only when one changes.
import { createHash } from "node:crypto";
import { spawn, execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export interface LabImage {
  dir: string;
  vmlinuz: string;
  initrd: string;
  privateKeyPath: string;
  /** OpenSSH public host key line of the director ("ssh-ed25519 AAAA… lab-director-host"). */
  hostKey: string;
}

const imageSourceDir = path.join(__dirname, "image");
const buildScript = path.join(imageSourceDir, "build-image.sh");

/** Images, VM runtime files and keys live here; PULUMI_IPVS_LAB_DIR overrides. */
export function labCacheDir(): string {
  return process.env.PULUMI_IPVS_LAB_DIR ?? path.join(os.homedir(), ".cache", "pulumi-ipvs-lab");
}

function filesUnder(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name))
    .sort();
}

/** Hash of everything the image is built from (script, overlay files and their modes). */
function sourceHash(): string {
  const h = createHash("sha256");
  for (const f of filesUnder(imageSourceDir)) {
    h.update(path.relative(imageSourceDir, f)).update(String(fs.statSync(f).mode)).update(fs.readFileSync(f));
  }
  return h.digest("hex");
}

/** Identifies the state of the apt package lists; resolving package versions is slow, so it is memoized on this. */
function aptListsFingerprint(): string {
  const listDir = "/var/lib/apt/lists";
  const h = createHash("sha256");
  for (const name of fs.existsSync(listDir) ? fs.readdirSync(listDir).sort() : []) {
    const st = fs.statSync(path.join(listDir, name));
    if (st.isFile()) h.update(`${name} ${st.size} ${st.mtimeMs}\n`);
  }
  return h.digest("hex");
}

function packageUris(): string {
  try {
    return execFileSync(buildScript, ["uris"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    const stderr = (e as { stderr?: string }).stderr ?? "";
    throw new Error(`lab image: cannot resolve Debian package versions (run apt-get update?): ${stderr.trim() || e}`);
  }
}

/** The image key: source hash + exact package versions. */
export function imageKey(): string {
  const src = sourceHash();
  const memo = path.join(labCacheDir(), "keys", createHash("sha256").update(src + aptListsFingerprint()).digest("hex"));
  if (fs.existsSync(memo)) return fs.readFileSync(memo, "utf8");
  const key = createHash("sha256").update(src).update(packageUris()).digest("hex").slice(0, 16);
  fs.mkdirSync(path.dirname(memo), { recursive: true });
  fs.writeFileSync(memo, key);
  return key;
}

function imageAt(dir: string): LabImage | undefined {
  const img: LabImage = {
    dir,
    vmlinuz: path.join(dir, "vmlinuz"),
    initrd: path.join(dir, "initrd.gz"),
    privateKeyPath: path.join(dir, "id_ed25519"),
    hostKey: "",
  };
  const hostKeyFile = path.join(dir, "host_ed25519_key.pub");
  if (![img.vmlinuz, img.initrd, img.privateKeyPath, hostKeyFile].every((f) => fs.existsSync(f))) return undefined;
  img.hostKey = fs.readFileSync(hostKeyFile, "utf8").trim();
  return img;
}

function runBuild(outDir: string, log: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(buildScript, ["build", outDir], { stdio: ["ignore", "pipe", "pipe"] });
    let tail = "";
    const onData = (chunk: Buffer) => {
      tail = (tail + chunk.toString()).slice(-4000);
      for (const line of chunk.toString().split("\n")) if (line.startsWith("lab image:")) log(line);
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve() : reject(new Error(`lab image build failed (exit ${code}):\n${tail}`)),
    );
  });
}

/** Returns the current image, building it first when missing. Concurrent callers wait for one build (a lock dir). */
export async function ensureImage(log: (line: string) => void = (l) => process.stderr.write(l + "\n")): Promise<LabImage> {
  const dir = path.join(labCacheDir(), "images", imageKey());
  const existing = imageAt(dir);
  if (existing) return existing;
  const lock = `${dir}.lock`;
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch {
      // Another process builds it; a lock older than the slowest build is left over from a killed build.
      const held = fs.statSync(lock, { throwIfNoEntry: false });
      if (held && Date.now() - held.mtimeMs > 20 * 60_000) fs.rmSync(lock, { recursive: true, force: true });
      await new Promise((r) => setTimeout(r, 1000));
      const built = imageAt(dir);
      if (built) return built;
    }
  }
  try {
    const built = imageAt(dir);
    if (built) return built;
    log(`lab image: building ${dir} (once; a few minutes)`);
    const started = Date.now();
    await runBuild(dir, log);
    log(`lab image: built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return imageAt(dir) ?? failNoImage(dir);
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}

function failNoImage(dir: string): never {
  throw new Error(`lab image build finished but ${dir} lacks vmlinuz, initrd.gz or keys`);
}
