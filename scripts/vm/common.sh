# Shared helpers of scripts/vm-image (sourced, not run).

T0=${T0:-$(date +%s)}
say() { printf '[vm-image %4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*" >&2; }
die() { echo "vm-image: $*" >&2; exit 1; }
need() { command -v "$1" > /dev/null || { echo "vm-image: '$1' is missing (apt-get install $2)" >&2; exit 69; }; }
short_hash() { sha256sum | cut -c1-"${1:-12}"; }

# in_root ROOT CMD...: CMD chrooted in ROOT, with /proc, /sys, /dev and
# /dev/pts mounted in a private mount namespace (gone when CMD ends, even
# if it is killed: nothing is ever left mounted on the host).
in_root() {
  local r=$1; shift
  unshare -m --propagation private -- sh -c '
    r=$1; shift
    mount -t proc proc "$r/proc" && mount -t sysfs sys "$r/sys" &&
      mount --bind /dev "$r/dev" && mount --bind /dev/pts "$r/dev/pts" || exit 71
    exec chroot "$r" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      HOME=/root LC_ALL=C.UTF-8 LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"' sh "$r" "$@"
}

# in_overlay LOWER UPPER WORKDIR MERGED BUILD CMD...: CMD chrooted in an
# overlay of the read-only tree LOWER, every write going to UPPER, with
# the host folder BUILD (if not empty) at /build; private mounts as in_root.
in_overlay() {
  local lower=$1 upper=$2 wd=$3 merged=$4 build=$5; shift 5
  mkdir -p "$upper" "$wd" "$merged"
  unshare -m --propagation private -- sh -c '
    lower=$1 upper=$2 wd=$3 r=$4 build=$5; shift 5
    mount -t overlay overlay -o "lowerdir=$lower,upperdir=$upper,workdir=$wd" "$r" || exit 71
    if [ -n "$build" ]; then mkdir -p "$r/build" && mount --bind "$build" "$r/build" || exit 71; fi
    mount -t proc proc "$r/proc" && mount -t sysfs sys "$r/sys" &&
      mount --bind /dev "$r/dev" && mount --bind /dev/pts "$r/dev/pts" || exit 71
    exec chroot "$r" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      HOME=/root LC_ALL=C.UTF-8 LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"' \
    sh "$lower" "$upper" "$wd" "$merged" "$build" "$@"
}

# with_lock FILE: holds an exclusive lock on FILE until the script ends
# (fd 9), printing who it waits for.
with_lock() {
  mkdir -p "$(dirname "$1")"
  exec 9> "$1"
  flock -n 9 || { say "waiting for another vm-image building $(basename "$1" .lock)"; flock 9; }
}

# first_error LOG: the first error line of a compiler, modpost, make or
# configure log, paths made relative to the Jool tree.
first_error() {
  local line
  line=$(grep -m1 -E ': (fatal )?error: |^ERROR: |undefined reference to|^configure: error' "$1" 2> /dev/null) \
    || line=$(grep -m1 -E '\*\*\* |Error [0-9]+' "$1" 2> /dev/null) || line=
  printf '%s' "$line" | sed -e 's|/build/src/||g' -e 's|/var/lib/dkms/jool/[^/]*/build/||g' \
    -e 's|/usr/src/jool-[^/]*/||g' | tr -d '\r' | cut -c1-400
}

# manifest_get FILE KEY: the value of KEY= in a manifest.
manifest_get() { sed -n "s/^$2=//p" "$1" | head -1; }
