#!/usr/bin/env bash
# The Debian package: cpack builds strait-cni_<version>_amd64.deb into a scratch dir; its
# version is the binaries' (build/generated/version.txt) and Debian-valid; its control data
# names it; Depends is what dpkg-shlibdeps computed (empty exactly when every executable is
# static); `dpkg -x` unpacks every registered plugin into /opt/cni/bin, every tool into
# /usr/bin, the units and the examples, and nothing into /etc; every plugin answers VERSION
# and every binary --version with the package's version.
# Usage: deb_test.sh BUILD_DIR SOURCE_DIR PLUGIN,PLUGIN,... TOOL,...
set -euo pipefail
build=$1 src=$2
IFS=, read -r -a plugins <<<"$3"
IFS=, read -r -a tools <<<"$4"
work=$(mktemp -d /tmp/strait-deb-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cpack --config "$build/CPackConfig.cmake" -B "$work/out" >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log" >&2; fail "cpack"; }
version=$(cat "$build/generated/version.txt")
deb=$work/out/strait-cni_${version}_amd64.deb
[ -f "$deb" ] || { ls "$work/out" >&2; fail "no $(basename "$deb")"; }
dpkg --validate-version "$version" || fail "version \"$version\" is not a valid Debian version"
[ "$(dpkg-deb -f "$deb" Package)" = strait-cni ] || fail "Package"
[ "$(dpkg-deb -f "$deb" Version)" = "$version" ] || fail "Version is not $version"
[ "$(dpkg-deb -f "$deb" Architecture)" = amd64 ] || fail "Architecture"
dpkg-deb -I "$deb" >/dev/null || fail "dpkg-deb -I"

dpkg -x "$deb" "$work/root"
[ ! -e "$work/root/etc" ] || fail "the package writes into /etc: $(find "$work/root/etc" -type f)"
dynamic=()
for p in "${plugins[@]}"; do
  bin=$work/root/opt/cni/bin/$p
  [ -x "$bin" ] || fail "plugin $p is not in /opt/cni/bin"
  out=$(CNI_COMMAND=VERSION "$bin" </dev/null) || fail "$p VERSION exited non-zero"
  python3 -c 'import json,sys; v=json.loads(sys.argv[1]); assert "1.1.0" in v["supportedVersions"]' \
    "$out" || fail "$p VERSION answered $out"
done
for t in "${tools[@]}"; do [ -x "$work/root/usr/bin/$t" ] || fail "tool $t is not in /usr/bin"; done
for f in $(find "$work/root/opt/cni/bin" "$work/root/usr/bin" -type f); do
  out=$("$f" --version) || fail "$(basename "$f") --version exited non-zero"
  [ "$out" = "$(basename "$f") $version" ] || fail "$(basename "$f") --version: \"$out\""
done
n=$(find "$work/root/opt/cni/bin" -type f | wc -l)
[ "$n" -eq ${#plugins[@]} ] || fail "/opt/cni/bin holds $n files, ${#plugins[@]} plugins registered"
for f in $(find "$work/root/opt/cni/bin" "$work/root/usr/bin" -type f); do
  readelf -d "$f" 2>/dev/null | grep -q NEEDED && dynamic+=("$(basename "$f")")
done
depends=$(dpkg-deb -f "$deb" Depends)
if [ ${#dynamic[@]} -eq 0 ]; then
  [ -z "$depends" ] || fail "every executable is static, yet Depends: $depends"
else
  # dpkg-shlibdeps names libc6 for any dynamically linked executable.
  [[ "$depends" == *libc6* ]] || fail "${dynamic[*]} are dynamic, Depends is \"$depends\""
fi
for unit in "$src"/conf/systemd/*.service; do
  [ -f "$work/root/lib/systemd/system/$(basename "$unit")" ] || fail "unit $(basename "$unit")"
done
for c in "$src"/conf/net.d/*.conflist; do
  [ -f "$work/root/usr/share/doc/strait-cni/examples/net.d/$(basename "$c")" ] ||
    fail "example $(basename "$c")"
done
echo "ok: $(basename "$deb"): ${#plugins[@]} plugins, ${#tools[@]} tools," \
  "dynamic: ${dynamic[*]:-none}, Depends: ${depends:-none}"
