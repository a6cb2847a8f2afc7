# shellcheck disable=SC2154,SC2034
# (Sourced: it reads and sets the variables of scripts/vm-image's main.)
# CELLS (sourced by scripts/vm-image): one Jool release built for one base,
# on the host, in an overlay of the base tree (native speed, the base is
# never written). What the build added (modules, modules.dep, clients and
# their libraries) becomes the cell's overlay/, appended to the base's
# initramfs as a second cpio archive that the initramfs copies over the root.

# cell_source: sets kind (in the cell's name), source_id (in its key) and
# source_desc (in its manifest) from --jool-repo, --jool-src or --debian.
cell_source() {
  if [ -n "$repo" ]; then
    local ref=v$release
    [ "$release" = main ] && ref=main
    commit=$(git -C "$repo" rev-parse --verify -q "$ref^{commit}") \
      || die "$repo has no $ref (tags are vX.Y.Z; the branch is main)"
    kind=git source_id="git $commit" source_desc="$ref $commit"
  elif [ -n "$src" ]; then
    local h
    if git -C "$src" rev-parse HEAD > /dev/null 2>&1; then
      h=$( { git -C "$src" rev-parse HEAD; git -C "$src" diff HEAD; } | short_hash 16)
    else
      h=$(cd "$src" && find . -type f ! -path './.git/*' -print0 | LC_ALL=C sort -z \
        | xargs -0 sha256sum | short_hash 16)
    fi
    [ -d "$src/src/mod" ] && [ -f "$src/src/usr/Makefile.am" ] \
      || die "$src has no src/mod and src/usr/Makefile.am: is it a Jool source tree?"
    kind=src source_id="src $h" source_desc="tree $src ($h)"
  else
    local from=${debian_suite:-$suite} ver up
    ver=$(manifest_get "${from_base:-$base}/manifest" debian_jool-dkms)
    case $ver in ''|'(none)') die "Debian $from has no jool-dkms" ;; esac
    up=${ver#*:}; up=${up%-*}
    [ "$up" = "$release" ] || die "Debian $from ships jool-dkms $ver, not $release (--release $up)"
    kind=deb${debian_suite:+-$debian_suite}
    source_id="debian $from $ver" source_desc="Debian $from jool-dkms/jool-tools $ver"
  fi
}

# cached_cell DIR: prints DIR and exits as its build did.
cached_cell() {
  local result
  result=$(manifest_get "$1/manifest" result)
  say "cached cell $1: $result"
  echo "$1"
  [ "$result" = built ] && exit 0
  say "first error: $(manifest_get "$1/manifest" first_error)"
  exit 3
}

build_cell() {
  local t0 w result first_error load
  t0=$(date +%s)
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  w=$cache/.build-$name
  rm -rf "$w"; mkdir -p "$w/logs" "$w/build/out"
  say "cell $name: $source_desc on $suite ($kver)"
  if [ "$debian" = 1 ]; then build_debian "$w"; else build_source "$w"; fi
  if [ "$module_rc" != 0 ]; then
    result="module does not build" first_error=$(first_error "$w/logs/module.log")
  elif [ "$clients_rc" != 0 ]; then
    result="clients do not build" first_error=$(first_error "$w/logs/clients.log")
  else
    result=built first_error=
  fi
  say "cell: $result${first_error:+: $first_error}"
  local jool_version='' module_version=''
  if [ "$result" = built ]; then
    # shellcheck disable=SC2016
    module_version=$(in_overlay "$base/root" "$w/upper" "$w/wd" "$w/merged" "" \
      modinfo -k "$kver" -F version jool_siit 2>&1 | head -1)
    jool_version=$(in_overlay "$base/root" "$w/upper" "$w/wd" "$w/merged" "" \
      jool_siit --version 2>&1 | head -1)
    extract_overlay "$w/upper" "$base/root" "$w/overlay"
    echo "$name" > "$w/overlay/etc/jool-cell"
    cell_boot_files "$w"
  fi
  {
    echo "release=$release"
    echo "suite=$suite"
    echo "kernel=$kver"
    echo "source=$source_desc"
    echo "result=$result"
    echo "first_error=$first_error"
    echo "module_error=$(first_error "$w/logs/module.log")"
    echo "clients_error=$(first_error "$w/logs/clients.log")"
    echo "jool_version=$jool_version"
    echo "module_version=$module_version"
    echo "key=$key"
    echo "base=$(basename "$base")"
    echo "image=$([ "$full" = 1 ] && echo full || echo cell)"
    echo "built=$(date -u +%FT%TZ)"
    echo "build_seconds=$(( $(date +%s) - t0 ))"
    echo "module_seconds=$module_seconds"
    echo "clients_seconds=$clients_seconds"
    echo "make_jobs=$jobs"
    echo "host_load=$load (1, 5, 15 min averages at the start, $(nproc) CPUs)"
    [ -z "$debian_suite" ] || echo "note=$debian_suite's Jool packages built for $suite's $kver"
    grep '^package=' "$base/manifest" || true
    [ -z "$packages" ] || echo "$packages" | sed 's/^/package=/'
  } > "$w/manifest.tmp"
  rm -rf "$w/upper" "$w/wd" "$w/merged" "$w/build" "$w/from-upper" "$w/from-wd" "$w/from-merged"
  mv "$w/manifest.tmp" "$w/manifest"
  rm -rf "$dir"; mv "$w" "$dir"
  say "cell ready: $dir ($result, $(( $(date +%s) - t0 )) s)"
  echo "$dir"
  [ "$result" = built ] || exit 3
  exit 0
}

# build_source W: Jool's tree in W/build/src, then jool-build.sh module
# and clients in an overlay of the base. Sets module_rc, clients_rc,
# module_seconds, clients_seconds, packages.
build_source() {
  local w=$1 part rc secs
  mkdir -p "$w/build/src"
  if [ -n "$repo" ]; then
    git -C "$repo" archive --format=tar "$commit" | tar -x -C "$w/build/src" \
      || die "git archive $commit of $repo failed"
  else
    tar -C "$src" --exclude=./.git -cf - . | tar -x -C "$w/build/src" || die "copying $src failed"
  fi
  cp "$VM_DIR/jool-build.sh" "$w/build/"
  for part in module clients; do
    say "cell: building the $part (make -j$jobs)"
    in_overlay "$base/root" "$w/upper" "$w/wd" "$w/merged" "$w/build" \
      sh /build/jool-build.sh "$part" "$kver" "$jobs" > "$w/logs/$part-run.log" 2>&1 \
      || { cat "$w/logs/$part-run.log" >&2; die "the $part build could not start (log: $w/logs/$part-run.log)"; }
    rm -f "$w/logs/$part-run.log"
    cp "$w/build/out/$part.log" "$w/logs/" 2> /dev/null || : > "$w/logs/$part.log"
    rc=$(cat "$w/build/out/$part.rc") secs=$(cat "$w/build/out/$part.seconds")
    case $part in
      module) module_rc=$rc module_seconds=$secs ;;
      clients) clients_rc=$rc clients_seconds=$secs ;;
    esac
    say "cell: $part $([ "$rc" = 0 ] && echo built || echo FAILED) ($secs s)"
  done
  packages=
}

# build_debian W: apt-get install jool-dkms jool-tools (DKMS builds the
# module) in an overlay of the base; with --debian-suite S2, S2's packages
# (and libnl) downloaded in an overlay of S2's base and installed here.
build_debian() {
  local w=$1 what="jool-dkms jool-tools" rc=0 t
  if [ -n "$debian_suite" ]; then
    mkdir -p "$w/build/debs"
    say "cell: apt-get download $debian_suite's jool-dkms, jool-tools, libnl"
    in_overlay "$from_base/root" "$w/from-upper" "$w/from-wd" "$w/from-merged" "$w/build" \
      sh -c 'cd /build/debs && apt-get download jool-dkms jool-tools libnl-3-200 libnl-genl-3-200' \
      > "$w/logs/download.log" 2>&1 \
      || { tail -20 "$w/logs/download.log" >&2; die "downloading $debian_suite's packages failed (log: $w/logs/download.log)"; }
    what="/build/debs/*.deb"
  fi
  say "cell: apt-get install $what (DKMS builds the module for $kver)"
  t=$(date +%s)
  apt_in_cell "$w" "$what" || rc=$?
  if [ $rc != 0 ] && grep -q -E 'Unable to fetch|404 +Not Found' "$w/logs/apt.log"; then
    say "cell: the base's package lists are stale: apt-get update in the cell, once more"
    in_overlay "$base/root" "$w/upper" "$w/wd" "$w/merged" "$w/build" apt-get update \
      >> "$w/logs/apt.log" 2>&1 || die "apt-get update failed (log: $w/logs/apt.log)"
    rc=0; apt_in_cell "$w" "$what" || rc=$?
  fi
  # DKMS's own log, with the compiler's messages.
  cat "$w"/upper/var/lib/dkms/jool/*/build/make.log > "$w/logs/module.log" 2> /dev/null \
    || cp "$w/logs/apt.log" "$w/logs/module.log"
  module_rc=1 clients_rc=1
  [ -z "$(find "$w/upper" -path "*/modules/$kver/updates/*" -name 'jool_siit.ko*' 2> /dev/null)" ] || module_rc=0
  [ ! -f "$w/upper/usr/bin/jool_siit" ] || clients_rc=0
  [ $clients_rc = 0 ] || cp "$w/logs/apt.log" "$w/logs/clients.log"
  module_seconds=$(( $(date +%s) - t )) clients_seconds=0
  packages=$(in_overlay "$base/root" "$w/upper" "$w/wd" "$w/merged" "" \
    dpkg-query -W jool-dkms jool-tools libnl-genl-3-200 2> /dev/null || true)
  say "cell: apt-get install: rc $rc, module $([ $module_rc = 0 ] && echo built || echo FAILED) ($module_seconds s)"
  keep_dkms_source "$w"
}

# keep_dkms_source W: the package's DKMS tree (/usr/src/jool-X, the code
# its module was built from) as W/dkms-src.tar, beside the cell and not in
# its overlay (guests do not need it): scripts/fuzz-kernel-build compiles
# the instrumented modules from it, from Debian's package alone.
keep_dkms_source() {
  local w=$1 d
  for d in "$w"/upper/usr/src/jool*; do
    [ -d "$d/src/mod/common" ] || continue
    tar -C "$w/upper/usr/src" -cf "$w/dkms-src.tar" "$(basename "$d")" \
      || die "cannot keep the DKMS tree $d"
    say "cell: kept the DKMS tree /usr/src/$(basename "$d") as dkms-src.tar"
    return 0
  done
}

apt_in_cell() {
  # shellcheck disable=SC2016
  in_overlay "$base/root" "$1/upper" "$1/wd" "$1/merged" "$1/build" \
    sh -c "apt-get install -y --no-install-recommends $2" >> "$1/logs/apt.log" 2>&1
}

# extract_overlay UPPER LOWER DEST: the files of an overlay's upper layer
# that a guest needs (modules and their index, programs, libraries) and that
# differ from the base's; not the build trees, caches, dpkg's state, nor
# the overlay's whiteouts.
extract_overlay() {
  local upper=$1 lower=$2 dest=$3 f
  mkdir -p "$dest/etc"
  (cd "$upper" && find lib usr/lib usr/lib64 usr/bin usr/sbin usr/local bin sbin etc/ld.so.cache \
     \( -type f -o -type l \) ! -path '*/__pycache__/*' -print 2> /dev/null) | while read -r f; do
    if [ -L "$upper/$f" ]; then
      [ -L "$lower/$f" ] && [ "$(readlink "$upper/$f")" = "$(readlink "$lower/$f")" ] && continue
    elif [ -f "$lower/$f" ] && [ ! -L "$lower/$f" ] && cmp -s "$upper/$f" "$lower/$f"; then
      continue
    fi
    mkdir -p "$dest/$(dirname "$f")"
    cp -a "$upper/$f" "$dest/$f"
  done
  say "cell: overlay $(find "$dest" -type f | wc -l) files, $(du -sk "$dest" | cut -f1) KiB"
}

# cell_boot_files W: vmlinuz (the base's), initrd.img (the base's plus the
# overlay as a second cpio archive, whose /cell the initramfs copies over
# the root) and rootfs.img (the base's, or with --full one of its own with
# the overlay installed).
cell_boot_files() {
  local w=$1 rel
  rel=../bases/$(basename "$base")   # relative: the cache folder may move
  ln -s "$rel/vmlinuz" "$w/vmlinuz"
  if [ "$full" = 1 ]; then
    ln -s "$rel/initrd.img" "$w/initrd.img"
    local size
    size=$(( $(stat -c %s "$base/rootfs.img") / 1048576 ))
    say "cell: --full: mkfs.ext4 -d of the base tree with the overlay (${size} MiB)"
    mkdir -p "$w/full"
    unshare -m --propagation private -- sh -c '
      mount -t overlay overlay -o "lowerdir=$1:$2" "$3" || exit 71
      mkfs.ext4 -q -F -L jooltest -d "$3" "$4" "$5M" > /dev/null' sh "$w/overlay" "$base/root" "$w/full" "$w/rootfs.img" "$size" \
      || die "mkfs.ext4 of the full image failed"
    rmdir "$w/full"
  else
    ln -s "$rel/rootfs.img" "$w/rootfs.img"
    mkdir -p "$w/cpio"
    mv "$w/overlay" "$w/cpio/cell"
    (cd "$w/cpio" && find cell | LC_ALL=C sort | "$base/root/bin/busybox" cpio -o -H newc) \
      > "$w/cell.cpio" 2> "$w/logs/cpio.log" || die "cpio of the overlay failed (log: $w/logs/cpio.log)"
    mv "$w/cpio/cell" "$w/overlay"; rmdir "$w/cpio"
    cat "$base/initrd.img" "$w/cell.cpio" > "$w/initrd.img"
    rm -f "$w/cell.cpio" "$w/logs/cpio.log"
  fi
}
