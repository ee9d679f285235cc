#!/usr/bin/env bash
# Every registered executable at a terminal and in its log (libcni/protocol/skel.cpp):
#   --version prints "<name> <version>", the version the build baked in (generated/version.txt);
#   --help exits 0 and names its README (a plugin: plugins/<name>/README.md);
#   a plugin run with no arguments and no CNI_COMMAND exits 0, prints its help on stderr and
#   nothing on stdout;
#   a plugin run with CNI_COMMAND=PARSE, logFile and logLevel info writes exactly one line there
#   naming the plugin, the command and the network, and no log line on stdout or stderr.
# Usage: executables_test.sh BUILD_DIR PLUGIN,PLUGIN,... TOOL,...
set -euo pipefail
build=$1
IFS=, read -r -a plugins <<<"$2"
IFS=, read -r -a tools <<<"$3"
version=$(cat "$build/generated/version.txt")
work=$(mktemp -d /tmp/strait-exe-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

for exe in "${plugins[@]}" "${tools[@]}"; do
  bin=$build/bin/$exe
  out=$(env -i "$bin" --version) || fail "$exe --version exited non-zero"
  [ "$out" = "$exe $version" ] || fail "$exe --version printed \"$out\", not \"$exe $version\""
  out=$(env -i "$bin" --help) || fail "$exe --help exited non-zero"
  [[ "$out" == *README.md* ]] || fail "$exe --help names no README: $out"
done
for p in "${plugins[@]}"; do
  bin=$build/bin/$p
  [[ "$(env -i "$bin" --help)" == *"plugins/$p/README.md"* ]] || fail "$p --help: not its README"
  env -i "$bin" >"$work/out" 2>"$work/err" </dev/null || fail "$p without CNI_COMMAND exited non-zero"
  [ ! -s "$work/out" ] || fail "$p without CNI_COMMAND wrote on stdout: $(cat "$work/out")"
  grep -q -- "--help" "$work/err" || fail "$p without CNI_COMMAND: no help on stderr"

  log=$work/$p.log
  printf '{"cniVersion":"1.1.0","name":"exe-test","type":"%s","logFile":"%s","logLevel":"info"}' \
    "$p" "$log" >"$work/conf"
  rc=0
  env -i CNI_COMMAND=PARSE CNI_PATH="$build/bin" "$bin" <"$work/conf" >"$work/out" 2>"$work/err" || rc=$?
  # A bare config is invalid for most plugins: success or an error, one line either way.
  [ -f "$log" ] || fail "$p PARSE wrote no logFile"
  [ "$(wc -l <"$log")" -eq 1 ] || fail "$p PARSE logged $(wc -l <"$log") lines: $(cat "$log")"
  grep -q " $p PARSE network=exe-test: " "$log" || fail "$p log line: $(cat "$log")"
  if [ "$rc" -eq 0 ]; then grep -q " info .*PARSE ok" "$log" || fail "$p: $(cat "$log")"; fi
  if [ "$rc" -ne 0 ]; then grep -q " error .*failed (code " "$log" || fail "$p: $(cat "$log")"; fi
  [ ! -s "$work/err" ] || fail "$p logged on stderr with a logFile: $(cat "$work/err")"
  ! grep -q "PARSE network=" "$work/out" || fail "$p wrote a log line on stdout"
done
echo "ok: ${#plugins[@]} plugins and ${#tools[@]} tools answer --version ($version) and --help;" \
  "each plugin logs one line per command"
