# shellcheck disable=SC2154,SC2034
# (Sourced: it reads and sets the variables of scripts/vm-image's main.)
# The BASE of a Debian suite (sourced by scripts/vm-image): one cached root
# tree per suite with its kernel, the kernel's headers, a build toolchain
# and the guest's runtime tools, plus the bootable files made from it
# (vmlinuz, our initramfs, rootfs.img with the guest's PID 1). Cells (one
# Jool release on one base) are built in overlays of the tree.

BASE_PACKAGES="linux-image-amd64 linux-headers-amd64 initramfs-tools kmod
  iproute2 iputils-ping util-linux procps tcpdump strace ca-certificates
  busybox-static python3-minimal
  build-essential autoconf automake libtool pkg-config libnl-genl-3-dev
  libxtables-dev dkms"

suite_sources() {
  local s=$1
  case $s in
    sid) echo "deb $mirror sid main" ;;
    *) echo "deb $mirror $s main"; echo "deb $mirror $s-updates main"
       echo "deb ${mirror%/debian}/debian-security $s-security main" ;;
  esac
}

# Bump when build_base changes what a base contains (the package list and
# the two init scripts are in the key by themselves): a base takes minutes,
# so editing this file's messages must not rebuild every base and cell.
BASE_FORMAT=1

# base_key SUITE: what decides a base's contents (the mirror's package
# versions are not part of it: --force-base rebuilds).
base_key() {
  { printf '%s\n' "$1" "$mirror" "$BASE_PACKAGES" "format $BASE_FORMAT"
    cat "$VM_DIR/initramfs-init" "$VM_DIR/guest-init"; } | short_hash 12
}

# ensure_base SUITE: sets $base to the base folder of SUITE, building it
# (under a lock) when absent or with --force-base.
ensure_base() {
  local s=$1 key
  key=$(base_key "$s")
  base=$cache/bases/$s-$key
  if [ "$force_base" = 0 ] && [ -f "$base/manifest" ]; then
    say "base $s: cached $base ($(manifest_get "$base/manifest" kernel))"
    return
  fi
  mkdir -p "$cache/bases"
  with_lock "$cache/.locks/base-$s-$key.lock"
  if [ "$force_base" = 0 ] && [ -f "$base/manifest" ]; then
    say "base $s: built meanwhile by another vm-image: $base"
    return
  fi
  build_base "$s" "$base"
}

build_base() {
  local s=$1 dir=$2 t0 work root kver mods
  t0=$(date +%s)
  work=$cache/bases/.build-$(basename "$dir")
  root=$work/root
  rm -rf "$work"; mkdir -p "$work"
  # A failed build keeps its logs, not its 1.5 GB tree (expanded now: the
  # locals are gone when the trap runs; after success the path is gone).
  # shellcheck disable=SC2064
  trap "rm -rf '$root'" EXIT
  say "base $s: debootstrap --variant=minbase $s ($mirror)"
  # In a private mount namespace: what debootstrap mounts in the tree goes with it.
  unshare -m --propagation private -- debootstrap --variant=minbase "$s" "$root" "$mirror" > "$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; die "debootstrap $s failed (log: $work/debootstrap.log)"; }
  suite_sources "$s" > "$root/etc/apt/sources.list"
  # sid's Release file is often past its Valid-Until on mirrors.
  [ "$s" = sid ] && echo 'Acquire::Check-Valid-Until "false";' > "$root/etc/apt/apt.conf.d/99no-check-valid-until"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  # Debian's initramfs is never used (ours is below): make its generator a
  # no-op instead of spending ~20 s on it at the kernel's install.
  in_root "$root" dpkg-divert --local --rename --divert /usr/sbin/update-initramfs.distrib \
    --add /usr/sbin/update-initramfs > /dev/null
  printf '#!/bin/sh\n# jool-harness base: the initramfs is built by scripts/vm-image\nexit 0\n' \
    > "$root/usr/sbin/update-initramfs"
  chmod 0755 "$root/usr/sbin/update-initramfs"
  say "base $s: apt-get update"
  in_root "$root" apt-get update > "$work/apt-update.log" 2>&1 \
    || { tail -20 "$work/apt-update.log" >&2; die "apt-get update in $s failed (log: $work/apt-update.log)"; }
  say "base $s: apt-get install kernel, headers, toolchain, tools"
  # --force-unsafe-io: no fsync per unpacked file (the tree is rebuilt, not
  # repaired, if the host crashes); it changes how dpkg writes, not what.
  # shellcheck disable=SC2086
  in_root "$root" apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-unsafe-io \
    $BASE_PACKAGES > "$work/apt-install.log" 2>&1 \
    || { tail -30 "$work/apt-install.log" >&2; die "apt-get install in $s failed (log: $work/apt-install.log)"; }
  kver=$(ls "$root/lib/modules")
  [ "$(echo "$kver" | wc -w)" = 1 ] || die "base $s: expected one kernel in /lib/modules, found: $kver"
  in_root "$root" test -e "/lib/modules/$kver/build/Makefile" || die "base $s: no headers for $kver"
  make_initramfs "$root" "$kver" "$work/initrd.img"
  install -m 0755 "$VM_DIR/guest-init" "$root/sbin/jool-harness-init"
  in_root "$root" apt-get clean
  {
    echo "suite=$s"
    echo "kernel=$kver"
    echo "key=$(basename "$dir" | sed 's/.*-//')"
    echo "mirror=$mirror"
    echo "built=$(date -u +%FT%TZ)"
    # Debian's Jool in this suite (what --debian cells install).
    for p in jool-dkms jool-tools; do
      echo "debian_$p=$(in_root "$root" apt-cache policy $p | sed -n 's/^ *Candidate: *//p')"
    done
    in_root "$root" dpkg-query -W "linux-image-$kver" linux-headers-amd64 gcc libc6 libnl-genl-3-200 \
      iproute2 util-linux kmod busybox-static 2> /dev/null | sed 's/^/package=/' || true
  } > "$work/manifest.tmp"
  cp "$root/boot/vmlinuz-$kver" "$work/vmlinuz"
  local size=$(( $(du -sm "$root" | cut -f1) * 13 / 10 + 1024 ))
  say "base $s: mkfs.ext4 -d ($(du -sh "$root" | cut -f1) root tree, ${size} MiB image)"
  mkfs.ext4 -q -F -L jooltest -d "$root" "$work/rootfs.img" "${size}M" > /dev/null
  echo "build_seconds=$(( $(date +%s) - t0 ))" >> "$work/manifest.tmp"
  mv "$work/manifest.tmp" "$work/manifest"
  rm -rf "$dir"; mv "$work" "$dir"
  say "base $s: ready, $dir (kernel $kver, $(( $(date +%s) - t0 )) s)"
}

# make_initramfs ROOT KVER OUT: our own initramfs instead of Debian's:
# busybox-static, the modules that mount the virtio root and the 9p shares
# (insmod in dependency order), no udev. Under TCG, Debian's spent ~2-3 s
# in udev before the root was mounted. Uncompressed, so that a cell can
# append its own cpio archive.
make_initramfs() {
  local root=$1 kver=$2 out=$3 ird mods n=10 ko name
  ird=$(mktemp -d "$root/tmp/initramfs.XXXXXX")
  mkdir -p "$ird/bin" "$ird/dev" "$ird/proc" "$ird/root" "$ird/mods"
  cp "$root/bin/busybox" "$ird/bin/busybox"
  mods=$(in_root "$root" modprobe -a --show-depends -S "$kver" virtio_pci virtio_blk ext4 9p 9pnet_virtio \
    | awk '$1 == "insmod" && !seen[$2]++ { print $2 }')
  [ -n "$mods" ] || die "modprobe --show-depends found no modules for $kver"
  for ko in $mods; do
    n=$((n + 1))
    name=$n-$(basename "$ko")
    case $ko in
      *.ko) cp "$root$ko" "$ird/mods/$name" ;;
      *.ko.xz) "$ird/bin/busybox" unxz -c "$root$ko" > "$ird/mods/${name%.xz}" ;;
      *) die "$ko: a module compression busybox cannot undo" ;;
    esac
  done
  install -m 0755 "$VM_DIR/initramfs-init" "$ird/init"
  (cd "$ird" && find . | LC_ALL=C sort | "$root/bin/busybox" cpio -o -H newc 2> /dev/null) > "$out" \
    || die "cpio of the initramfs failed"
  rm -rf "$ird"
  say "initramfs: $(echo "$mods" | wc -w) modules, $(du -k "$out" | cut -f1) KiB, uncompressed"
}
