#!/usr/bin/env bash
# cmake --install into a scratch prefix: every plugin in $bindir, every tool in usr/bin,
# the units, the READMEs, and every conf/net.d conflist in $confdir, where a file that
# is already there (an operator's) is kept byte for byte, on the first install and on the next.
# Usage: install_test.sh BUILD_DIR SOURCE_DIR PLUGIN,PLUGIN,... TOOL,... [BIN_DIR [CONF_DIR]]
# (the configured STRAIT_INSTALL_CNI_BIN_DIR and _CONF_DIR, default opt/cni/bin, etc/cni/net.d)
set -euo pipefail
build=$1 src=$2 bindir=${5:-opt/cni/bin} confdir=${6:-etc/cni/net.d}
IFS=, read -r -a plugins <<<"$3"
IFS=, read -r -a tools <<<"$4"
[ ${#plugins[@]} -gt 0 ] || { echo "FAIL: no plugins registered" >&2; exit 1; }
prefix=$(mktemp -d /tmp/strait-install-test.XXXXXX)
trap 'rm -rf "$prefix"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

conflists=("$src"/conf/net.d/*.conflist)
[ -e "${conflists[0]}" ] || fail "no conflist in $src/conf/net.d"
kept=$(basename "${conflists[0]}")
mkdir -p "$prefix/$confdir"
echo '{"operator": "edited"}' >"$prefix/$confdir/$kept"

install() { cmake --install "$build" --prefix "$prefix" >"$prefix.log" 2>&1 || { cat "$prefix.log" >&2; fail "cmake --install"; }; rm -f "$prefix.log"; }
install

for p in "${plugins[@]}"; do
  [ -x "$prefix/$bindir/$p" ] || fail "plugin $p not installed as $bindir/$p"
  cmp -s "$build/bin/$p" "$prefix/$bindir/$p" || fail "$bindir/$p is not build/bin/$p"
done
for t in "${tools[@]}"; do
  [ -x "$prefix/usr/bin/$t" ] || fail "tool $t not installed as usr/bin/$t"
  [ ! -e "$prefix/$bindir/$t" ] || fail "tool $t is in the CNI bin dir"
done
# Nothing else in the CNI bin dir (a test fixture, say).
n=$(find "$prefix/$bindir" -type f | wc -l)
[ "$n" -eq ${#plugins[@]} ] || fail "$bindir holds $n files, ${#plugins[@]} plugins registered"
for unit in "$src"/conf/systemd/*.service; do
  cmp -s "$unit" "$prefix/lib/systemd/system/$(basename "$unit")" || fail "unit $(basename "$unit")"
done
for readme in "$src"/plugins/*/README.md; do
  rel=${readme#"$src"/}
  [ -f "$prefix/usr/share/doc/strait-cni/$rel" ] || fail "$rel not installed"
done
for c in "${conflists[@]}"; do
  name=$(basename "$c")
  [ "$name" = "$kept" ] && continue
  cmp -s "$c" "$prefix/$confdir/$name" || fail "$confdir/$name is not conf/net.d/$name"
  [ -f "$prefix/usr/share/doc/strait-cni/examples/net.d/$name" ] || fail "example $name"
done
grep -qx '{"operator": "edited"}' "$prefix/$confdir/$kept" ||
  fail "the existing $confdir/$kept was overwritten"

# Again, after the operator edited one more config: both edits stay.
other=$(basename "${conflists[-1]}")
echo '{"operator": "again"}' >"$prefix/$confdir/$other"
install
grep -qx '{"operator": "edited"}' "$prefix/$confdir/$kept" || fail "$kept overwritten"
grep -qx '{"operator": "again"}' "$prefix/$confdir/$other" || fail "$other overwritten"
echo "ok: ${#plugins[@]} plugins, ${#tools[@]} tools, ${#conflists[@]} conflists (existing kept)"
