// FTP through a NAT VIP in the lab (issue 28): vsftpd in a real server namespace, tnftp in the client namespace, and
// the client cut off from the real servers' network, as a client on the internet is from a NAT director's private
// side. Used by the helper-level test (test/lab/helper/ftp.test.ts) and the CLI one (test/e2e/examples.ipvs.test.ts).
import type { LabDirector } from "./director";
import { inClient, type LabRealServer } from "./realServers";

/** What the FTP server serves: one file, /file.txt, holding FTP_CONTENT. */
export const FTP_CONTENT = "hello-ftp";
/** vsftpd's passive data ports (a range of 11). */
export const FTP_PASSIVE_PORTS = { min: 30000, max: 30010 };

const ROOT = "/run/lab/ftp";
const CONF = "/run/lab/vsftpd.conf";

// Anonymous, read-only; connect_timeout and data_connection_timeout bound an active data connection that cannot be
// made. vsftpd's anonymous user needs a home: the lab image has no "ftp" user, so one is added with ROOT as home.
const VSFTPD_CONF = `listen=YES
background=YES
anonymous_enable=YES
no_anon_password=YES
anon_root=${ROOT}
local_enable=NO
write_enable=NO
secure_chroot_dir=/run/vsftpd/empty
nopriv_user=nobody
seccomp_sandbox=NO
pasv_min_port=${FTP_PASSIVE_PORTS.min}
pasv_max_port=${FTP_PASSIVE_PORTS.max}
connect_from_port_20=YES
connect_timeout=5
data_connection_timeout=5`;

/**
 * Starts vsftpd on port 21 in each of `servers`' namespaces, and makes the real servers' network (10.10.0.0/24)
 * unreachable from the client namespace: the client knows only the VIP, so a transfer that does not go through IPVS
 * fails. Resolves once every vsftpd listens. Returns what undoes both (the route, the servers), for a director other
 * tests go on using.
 */
export async function startFtpServers(d: LabDirector, servers: LabRealServer[]): Promise<{ stop(): Promise<void> }> {
  const start = (rs: LabRealServer) => `ip netns exec ${rs.name} vsftpd ${CONF}
i=0; until ip netns exec ${rs.name} netstat -ltn | grep -q ':21 '; do i=$((i+1)); [ $i -lt 100 ] || exit 1; sleep 0.1; done`;
  await d.exec(`set -e
mkdir -p ${ROOT} /run/vsftpd/empty
printf ${FTP_CONTENT} > ${ROOT}/file.txt
grep -q '^ftp:' /etc/passwd || echo 'ftp:x:64000:64000:ftp:${ROOT}:/usr/sbin/nologin' >> /etc/passwd
cat > ${CONF} <<'CONF'
${VSFTPD_CONF}
CONF
${servers.map(start).join("\n")}`);
  await inClient(d, "ip route add blackhole 10.10.0.0/24");
  return {
    async stop() {
      await inClient(d, "ip route del blackhole 10.10.0.0/24");
      await d.killByCmdline(`vsftpd\\ ${CONF}*`);
    },
  };
}

/**
 * One transfer of /file.txt from ftp://vip:21 in the client namespace: "passive" (tnftp -p) or "active" (tnftp -A).
 * ok: tnftp exited 0; out: its output, then the file's content. Bounded: 20 s for tnftp.
 */
export async function ftpTransfer(d: LabDirector, vip: string, mode: "passive" | "active"): Promise<{ ok: boolean; out: string }> {
  const flag = mode === "passive" ? "-p" : "-A";
  const r = await inClient(d, `rm -f /tmp/ftp.out; timeout 20 tnftp ${flag} -V -o /tmp/ftp.out ftp://${vip}:21/file.txt 2>&1; echo "rc=$?"; cat /tmp/ftp.out 2>/dev/null`, {
    check: false,
    timeoutMs: 40_000,
  });
  return { ok: r.stdout.includes("rc=0\n"), out: r.stdout };
}

/** ip_vs_ftp's ports parameter as the director has it ("21,2121"), or "none" while the module is not loaded. */
export async function ftpModulePorts(d: LabDirector): Promise<string> {
  return (await d.exec("cat /sys/module/ip_vs_ftp/parameters/ports 2>/dev/null || echo none")).stdout.trim();
}

/** How many connections hold ip_vs_ftp (each FTP control connection's entry, until it expires); 0 when not loaded. */
export async function ftpModuleUsers(d: LabDirector): Promise<number> {
  return Number((await d.exec("cat /sys/module/ip_vs_ftp/refcnt 2>/dev/null || echo 0")).stdout.trim());
}
