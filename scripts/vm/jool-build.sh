#!/bin/sh
# Runs INSIDE an overlay chroot of a base (scripts/vm-image), as
# `jool-build.sh module|clients KVER JOBS`: builds Jool from /build/src for
# kernel KVER with make -jJOBS.
#
# module: the way Jool's own dkms.conf does it, kbuild with M= on
#   src/mod/common, siit and nat64 in that order (4.0.0-4.0.5 have no
#   separate common module; 4.2's MAP-T module is not built); installs the
#   .ko files, debug info stripped, into /lib/modules/KVER/updates/jool and
#   runs depmod.
# clients: autotools, then only the client directories of
#   src/usr/Makefile.am (util, nl, argp, siit, nat64): not the iptables
#   plugin (older trees' does not link with newer toolchains), joold nor
#   MAP-T; `make install` into /usr.
#
# Writes /build/out/PART.log, PART.rc, PART.seconds (and version: what the
# installed jool_siit --version prints). Never fails itself: the rc files
# say what built.
part=$1 k=$2 jobs=$3
src=/build/src out=/build/out
export LC_ALL=C LANG=C   # ASCII quotes in compiler messages
mkdir -p $out
cd $src || exit 70
log=$out/$part.log

module() {
  for d in common siit nat64; do
    [ -f src/mod/$d/Makefile ] || [ -f src/mod/$d/Kbuild ] || continue
    echo "=== make -C /lib/modules/$k/build M=$src/src/mod/$d -j$jobs modules"
    nice -n 10 make -C "/lib/modules/$k/build" M="$src/src/mod/$d" -j"$jobs" modules || return 1
  done
  for m in jool_siit jool; do
    [ -n "$(find src/mod -name $m.ko)" ] || { echo "=== no $m.ko was built"; return 1; }
  done
  mkdir -p "/lib/modules/$k/updates/jool"
  find src/mod -name '*.ko' | while read -r ko; do
    strip --strip-debug -o "/lib/modules/$k/updates/jool/${ko##*/}" "$ko" || exit 1
  done || return 1
  echo "=== depmod $k"
  depmod "$k"
}

clients() {
  # src/usr/Makefile.am's SUBDIRS, in its order, minus the plugin, joold
  # and MAP-T.
  dirs=$(sed -n 's/^SUBDIRS *= *//p' src/usr/Makefile.am | tr ' ' '\n' \
    | grep -v -x -E 'iptables|joold|mapt|\$\(MAYBE_XTABLES\)|')
  echo "=== client directories:" $dirs
  if [ ! -x configure ]; then
    echo "=== ./autogen.sh"
    ./autogen.sh || return 1
  fi
  echo "=== ./configure --prefix=/usr"
  ./configure --prefix=/usr --sysconfdir=/etc --localstatedir=/var || return 1
  for d in $dirs; do
    echo "=== make -C src/usr/$d -j$jobs"
    nice -n 10 make -C src/usr/$d -j"$jobs" || return 1
  done
  for d in $dirs; do
    echo "=== make -C src/usr/$d install"
    make -C src/usr/$d install || return 1
  done
  for c in jool jool_siit; do
    command -v $c > /dev/null || { echo "=== $c was not installed"; return 1; }
  done
  jool_siit --version > $out/version 2>&1
}

t=$(date +%s)
case $part in
  module) module >> $log 2>&1 ;;
  clients) clients >> $log 2>&1 ;;
  *) echo "jool-build.sh: module or clients, not '$part'" >&2; exit 64 ;;
esac
echo $? > $out/$part.rc
echo $(( $(date +%s) - t )) > $out/$part.seconds
exit 0
