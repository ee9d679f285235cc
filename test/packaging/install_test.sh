#!/usr/bin/env bash
# cmake --install into a scratch prefix: every plugin in opt/cni/bin, every tool in usr/bin,
# the units, the READMEs, and every conf/net.d conflist in etc/cni/net.d, where a file that
# is already there (an operator's) is kept byte for byte, on the first install and on the next.
# Usage: install_test.sh BUILD_DIR SOURCE_DIR PLUGIN,PLUGIN,... TOOL,...
set -euo pipefail
build=$1 src=$2
IFS=, read -r -a plugins <<<"$3"
IFS=, read -r -a tools <<<"$4"
[ ${#plugins[@]} -gt 0 ] || { echo "FAIL: no plugins registered" >&2; exit 1; }
prefix=$(mktemp -d /tmp/strait-install-test.XXXXXX)
trap 'rm -rf "$prefix"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

conflists=("$src"/conf/net.d/*.conflist)
[ -e "${conflists[0]}" ] || fail "no conflist in $src/conf/net.d"
kept=$(basename "${conflists[0]}")
mkdir -p "$prefix/etc/cni/net.d"
echo '{"operator": "edited"}' >"$prefix/etc/cni/net.d/$kept"

install() { cmake --install "$build" --prefix "$prefix" >"$prefix.log" 2>&1 || { cat "$prefix.log" >&2; fail "cmake --install"; }; rm -f "$prefix.log"; }
install

for p in "${plugins[@]}"; do
  [ -x "$prefix/opt/cni/bin/$p" ] || fail "plugin $p not installed as opt/cni/bin/$p"
  cmp -s "$build/bin/$p" "$prefix/opt/cni/bin/$p" || fail "opt/cni/bin/$p is not build/bin/$p"
done
for t in "${tools[@]}"; do
  [ -x "$prefix/usr/bin/$t" ] || fail "tool $t not installed as usr/bin/$t"
  [ ! -e "$prefix/opt/cni/bin/$t" ] || fail "tool $t is in the CNI bin dir"
done
# Nothing else in the CNI bin dir (a test fixture, say).
n=$(find "$prefix/opt/cni/bin" -type f | wc -l)
[ "$n" -eq ${#plugins[@]} ] || fail "opt/cni/bin holds $n files, ${#plugins[@]} plugins registered"
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
  cmp -s "$c" "$prefix/etc/cni/net.d/$name" || fail "etc/cni/net.d/$name is not conf/net.d/$name"
  [ -f "$prefix/usr/share/doc/strait-cni/examples/net.d/$name" ] || fail "example $name"
done
grep -qx '{"operator": "edited"}' "$prefix/etc/cni/net.d/$kept" ||
  fail "the existing etc/cni/net.d/$kept was overwritten"

# Again, after the operator edited one more config: both edits stay.
other=$(basename "${conflists[-1]}")
echo '{"operator": "again"}' >"$prefix/etc/cni/net.d/$other"
install
grep -qx '{"operator": "edited"}' "$prefix/etc/cni/net.d/$kept" || fail "$kept overwritten"
grep -qx '{"operator": "again"}' "$prefix/etc/cni/net.d/$other" || fail "$other overwritten"
echo "ok: ${#plugins[@]} plugins, ${#tools[@]} tools, ${#conflists[@]} conflists (existing kept)"
