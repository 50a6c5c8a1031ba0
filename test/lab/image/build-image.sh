#!/usr/bin/env bash
# Builds the lab director image from Debian packages, without installing anything on the host:
#   build-image.sh uris        print the exact .deb URIs (name + version) the image is made of; the image cache key hashes them
#   build-image.sh build OUT   write vmlinuz, initrd.gz, the user key pair and the host public key into directory OUT
# The kernel and its modules come from linux-image-amd64 (dpkg -x + depmod -b); userland is busybox-static plus real Debian
# binaries (OpenSSH, ipvsadm, iproute2, nftables, sudo with PAM, kmod, bash, e2fsprogs for the optional persistent disk;
# keepalived as the health-check peer in `npm run bench`, openssl s_server and dnsmasq as real TLS and DNS servers to probe,
# vsftpd and tnftp as a real FTP server and client for ip_vs_ftp)
# with every library package they depend on.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

USERLAND=(busybox-static bash dash openssh-server openssh-sftp-server ipvsadm iproute2 nftables sudo libpam-modules kmod e2fsprogs
  keepalived openssl dnsmasq-base vsftpd tnftp)

kernel_package() {
  apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}

# The userland packages plus the library packages of their dependency closure; maintainer-script tooling (perl, debconf,
# adduser…) is left out because nothing is installed with dpkg here (libperl stays: keepalived links it through net-snmp);
# libelogind0 would shadow libsystemd0.
packages() {
  local named; named="$(IFS='|'; echo "${USERLAND[*]}")"
  apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances \
      "${USERLAND[@]}" |
    grep -E '^[a-z0-9]' | grep -Ev -- '-perl$|^libelogind' | grep -E "^(lib.*|zlib1g|${named})\$" | sort -u
  kernel_package
}

uris() {
  apt-get download --print-uris $(packages) | sort
}

# Modules the director needs (IPVS and every scheduler, netfilter incl. nftables for fwmark, tunnels for TUN mode,
# bridge/veth/dummy for lab topologies, virtio for the VM, virtio_blk + ext4 for the persistent disk) plus whatever they
# depend on.
select_modules() {
  local kroot=$1 kver=$2 mdir="$1/lib/modules/$2"
  {
    find "$mdir/kernel/net/netfilter" "$mdir/kernel/net/ipv4" "$mdir/kernel/net/ipv6" "$mdir/kernel/net/bridge" \
      "$mdir/kernel/net/8021q" "$mdir/kernel/drivers/virtio" -name '*.ko'
    ls "$mdir"/kernel/drivers/net/{veth,dummy,virtio_net}.ko "$mdir"/kernel/drivers/char/hw_random/virtio-rng.ko \
      "$mdir"/kernel/drivers/block/virtio_blk.ko "$mdir"/kernel/fs/ext4/ext4.ko
  } | xargs -n1 basename | sed 's/\.ko$//' | sort -u |
    while read -r m; do modprobe -d "$kroot" -S "$kver" --show-depends "$m"; done |
    awk '$1 == "insmod" { print $2 }' | sort -u
}

build() {
  local out=$1
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/debs" "$work/kernel" "$work/root"

  echo "lab image: downloading packages" >&2
  (cd "$work/debs" && apt-get download -o APT::Sandbox::User=root $(packages) >/dev/null)

  echo "lab image: kernel and modules" >&2
  local kdeb; kdeb="$(ls "$work"/debs/linux-image-[0-9]*.deb)"
  dpkg -x "$kdeb" "$work/kernel"
  local kver; kver="$(ls "$work/kernel/lib/modules")"
  depmod -b "$work/kernel" "$kver"
  cp "$work/kernel/boot/vmlinuz-$kver" "$work/vmlinuz"
  select_modules "$work/kernel" "$kver" | while read -r ko; do
    local rel="${ko#"$work/kernel/"}"
    mkdir -p "$work/root/$(dirname "$rel")" && cp "$ko" "$work/root/$rel"
  done
  cp "$work/kernel/lib/modules/$kver"/modules.{order,builtin,builtin.modinfo} "$work/root/lib/modules/$kver/"
  depmod -b "$work/root" "$kver"

  echo "lab image: userland" >&2
  for deb in "$work"/debs/*.deb; do
    [[ "$deb" == "$kdeb" ]] || dpkg -x "$deb" "$work/root"
  done
  rm -rf "$work"/root/usr/share/{doc,man,info,locale,lintian,bug,bash-completion} \
    "$work"/root/usr/lib/x86_64-linux-gnu/{gconv,perl} "$work"/root/usr/share/snmp/mibs "$work/root/etc/init.d" "$work/root/etc/pam.d"
  # busybox supplies every tool no Debian binary above provides (sh is dash, as on Debian).
  "$work/root/bin/busybox" --list-full | while read -r applet; do
    [[ -e "$work/root/$applet" || -L "$work/root/$applet" ]] || { mkdir -p "$work/root/$(dirname "$applet")"; ln -s /bin/busybox "$work/root/$applet"; }
  done
  ln -sf dash "$work/root/bin/sh"
  ln -s /bin/busybox "$work/root/init"
  cp -a "$here/rootfs/." "$work/root/"
  mkdir -p "$work"/root/{proc,sys,dev,run,tmp,var/log,var/tmp,usr/local/bin,root/.ssh}
  chmod 1777 "$work/root/tmp" "$work/root/var/tmp"

  echo "lab image: users and keys" >&2
  ssh-keygen -q -t ed25519 -N '' -C lab-director-host -f "$work/root/etc/ssh/ssh_host_ed25519_key"
  ssh-keygen -q -t ed25519 -N '' -C lab-user -f "$work/id_ed25519"
  # needpw has a real password that nobody is told, so its sudo must ask for one and fail without a terminal.
  local pwhash; pwhash="$(head -c 24 /dev/urandom | base64 | "$work/root/bin/busybox" mkpasswd -m sha512 -S "$(head -c 6 /dev/urandom | base64 | tr -dc a-zA-Z0-9)")"
  cat > "$work/root/etc/passwd" <<PASSWD
root:x:0:0:root:/root:/bin/bash
sshd:x:100:65534:sshd privilege separation:/run/sshd:/usr/sbin/nologin
ops:x:1000:1000:ops:/home/ops:/bin/bash
needpw:x:1001:1001:needpw:/home/needpw:/bin/bash
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
PASSWD
  cat > "$work/root/etc/group" <<GROUP
root:x:0:
sudo:x:27:
ops:x:1000:
needpw:x:1001:
nogroup:x:65534:
GROUP
  cat > "$work/root/etc/shadow" <<SHADOW
root:*:19000:0:99999:7:::
sshd:*:19000:0:99999:7:::
ops:*:19000:0:99999:7:::
needpw:${pwhash}:19000:0:99999:7:::
nobody:*:19000:0:99999:7:::
SHADOW
  chmod 640 "$work/root/etc/shadow"; chmod 440 "$work/root/etc/sudoers"
  cp "$work/id_ed25519.pub" "$work/root/root/.ssh/authorized_keys"
  chmod 700 "$work/root/root" "$work/root/root/.ssh"
  local u uid
  for u in ops:1000 needpw:1001; do
    uid="${u#*:}"; u="${u%%:*}"
    mkdir -p "$work/root/home/$u/.ssh"
    cp "$work/id_ed25519.pub" "$work/root/home/$u/.ssh/authorized_keys"
    chmod 700 "$work/root/home/$u/.ssh"
    chown -R "$uid:$uid" "$work/root/home/$u"
  done

  echo "lab image: initramfs" >&2
  (cd "$work/root" && find . | cpio -o -H newc --quiet | gzip -6) > "$work/initrd.gz"

  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  cp "$work/vmlinuz" "$work/initrd.gz" "$work/id_ed25519" "$work/id_ed25519.pub" "$out.tmp/"
  cp "$work/root/etc/ssh/ssh_host_ed25519_key.pub" "$out.tmp/host_ed25519_key.pub"
  echo "$kver" > "$out.tmp/kernel-version"
  chmod 600 "$out.tmp/id_ed25519"
  rm -rf "$out" && mv "$out.tmp" "$out"
}

case "${1:-}" in
  uris) uris ;;
  build) [[ $# -eq 2 ]] || { echo "usage: $0 build OUTDIR" >&2; exit 2; }; build "$2" ;;
  *) echo "usage: $0 uris | build OUTDIR" >&2; exit 2 ;;
esac
