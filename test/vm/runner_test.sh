#!/usr/bin/env bash
# Proves the VM runner, scripts/vm, by booting it: exit statuses 0 and 3 come back; stdout
# and stderr come through apart and clean (no CRLF, no kernel messages); the caller's
# directory, the allow-listed and --env variables arrive and nothing else does; the shared
# root is writable only in the VM's overlay, a --share directory for real; the VM has no
# network device; --modules ipip makes tunl0; --modules netdevsim makes a netdevsim device
# with 4 VFs; and each failure has its own exit status and message: a kernel panic (123), a
# timeout (124), a module that does not load (122), a VM that does not boot (121, a broken
# copy of the kernel cache), bad usage (125, no boot); --verbose shows the kernel's console.
#
#   runner_test.sh [scripts/vm]
#
# Run as root. Five boots, each a few seconds (more on a busy machine); the first run on a
# machine also downloads the kernel and builds netdevsim (about a minute and a half).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
vm=${1:-$here/../../scripts/vm}
[ -x "$vm" ] || {
  echo "FAIL: no runner at $vm" >&2
  exit 1
}
[ "$(id -u)" = 0 ] || {
  echo "FAIL: must run as root (scripts/vm needs it)" >&2
  exit 1
}

tmp=$(mktemp -d /tmp/strait-vm-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

check() { # check DESCRIPTION COMMAND...: one assertion
  if "${@:2}"; then
    echo "ok - $1"
    passed=$((passed + 1))
  else
    echo "not ok - $1"
    failed=$((failed + 1))
  fi
}

run() { # run NAME ARG...: scripts/vm ARG..., its output in $tmp/NAME.{out,err}, status in rc
  local name=$1 start
  shift
  start=$(date +%s%N)
  rc=0
  "$vm" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" || rc=$?
  echo "--- $name: exit status $rc after $((($(date +%s%N) - start) / 1000000)) ms"
}

show() { # show NAME: what a run printed, when one of its checks failed
  echo "    stdout of $1:"
  sed 's/^/    | /' "$tmp/$1.out"
  echo "    stderr of $1:"
  sed 's/^/    | /' "$tmp/$1.err"
}

is() { [ "$1" = "$2" ]; }
has() { grep -qF -- "$2" "$1"; }
result() { sed -n "s/^$1=//p" "$tmp/share/results" 2>/dev/null; }

# 1. Exit status 0 (and, on a new machine, the first use that fills the kernel cache).
run true -- true
check "exit status 0 comes back" is "$rc" 0 || show true

# 2. Everything that can share one boot. The script runs inside, from $tmp/cwd; it records
#    what it found in the --share directory and exits 3.
mkdir -p "$tmp/cwd" "$tmp/share"
cat >"$tmp/inside.sh" <<'EOF'
share=$1
r=$share/results
echo "stdout line"
echo "stderr line" >&2
{
  echo "cwd=$(pwd)"
  echo "net_before=$(ls /sys/class/net | sort | tr '\n' ' ')"
  echo "strait_var=${STRAIT_TEST_VAR-unset}"
  echo "strait_vm_var=${STRAIT_VM_TIMEOUT-unset}"
  echo "named_var=${VM_TEST_NAMED-unset}"
  echo "set_var=${VM_TEST_SET-unset}"
  echo "hidden_var=${VM_TEST_HIDDEN-unset}"
  echo "asan=${ASAN_OPTIONS-unset}"
  echo "stdin=$(cat)"
  [ -t 1 ] && echo "stdout_tty=yes" || echo "stdout_tty=no"
  echo "uid=$(id -u)"
  echo "kernel=$(uname -r)"
  # The host's root is read-only under a tmpfs overlay: this write stays in the VM.
  echo probe >"$share/../overlay-probe" && echo "overlay_write=ok"
  # netdevsim: one device with one port, then 4 VFs on it.
  echo "1 1" >/sys/bus/netdevsim/new_device
  dev=/sys/bus/netdevsim/devices/netdevsim1
  echo 4 >"$dev/sriov_numvfs"
  echo "numvfs=$(cat "$dev/sriov_numvfs")"
  pf=$(ls "$dev/net")
  echo "pf=$pf"
  echo "vfs=$(ip link show dev "$pf" | grep -c '^ *vf [0-9]')"
  # ip netns works on the VM's /run.
  ip netns add strait-vm-test && ip -n strait-vm-test link set lo up && echo "netns=ok"
} >"$r" 2>"$share/errors"
exit 3
EOF
(
  cd "$tmp/cwd"
  export STRAIT_TEST_VAR=passed VM_TEST_NAMED=named VM_TEST_HIDDEN=leaked
  export ASAN_OPTIONS=detect_leaks=1 STRAIT_VM_TIMEOUT=300
  run main --modules ipip --modules=netdevsim --share "$tmp/share" --env VM_TEST_NAMED \
    --env VM_TEST_SET=set -- bash "$tmp/inside.sh" "$tmp/share"
  echo "$rc" >"$tmp/main.rc"
)
rc=$(cat "$tmp/main.rc")
before=$failed
check "exit status 3 comes back" is "$rc" 3
check "stdout comes through, alone and without CRLF" is "$(od -c "$tmp/main.out")" \
  "$(printf 'stdout line\n' | od -c)"
check "stderr comes through, alone (no kernel messages)" is "$(cat "$tmp/main.err")" \
  "stderr line"
check "the --share directory got the results" test -s "$tmp/share/results"
check "nothing inside failed" test ! -s "$tmp/share/errors"
check "COMMAND runs in the caller's directory" is "$(result cwd)" "$tmp/cwd"
check "COMMAND runs as root in Debian's kernel" \
  is "$(result uid) $(result kernel | sed 's/-[0-9]*-amd64$/-amd64/')" "0 6.1.0-amd64"
check "the VM has no network device (only lo and --modules ipip's tunl0)" \
  is "$(result net_before)" "lo tunl0 "
check "STRAIT_* variables pass" is "$(result strait_var)" passed
check "STRAIT_VM_* (the runner's own) do not" is "$(result strait_vm_var)" unset
check "ASAN_OPTIONS passes" is "$(result asan)" detect_leaks=1
check "--env NAME passes the caller's NAME" is "$(result named_var)" named
check "--env NAME=VALUE sets NAME" is "$(result set_var)" set
check "other variables do not pass" is "$(result hidden_var)" unset
check "stdin is empty" is "$(result stdin)" ""
check "stdout is a pipe, not a tty" is "$(result stdout_tty)" no
check "the shared root is writable in the VM" is "$(result overlay_write)" ok
check "... and the host's files stay untouched" test ! -e "$tmp/overlay-probe"
check "netdevsim took 4 VFs" is "$(result numvfs)" 4
check "the netdevsim PF lists 4 VFs" is "$(result vfs)" 4
check "ip netns works" is "$(result netns)" ok
if [ "$failed" != "$before" ]; then
  show main
  sed 's/^/    results| /' "$tmp/share/results" "$tmp/share/errors" 2>/dev/null || true
fi

# 3. A kernel panic, with --verbose.
run panic --verbose -- sh -c 'echo c >/proc/sysrq-trigger; sleep 60'
before=$failed
check "--verbose streams the kernel's console" has "$tmp/panic.err" "Linux version 6.1.0-"
check "a kernel panic exits 123" is "$rc" 123
check "... saying so" has "$tmp/panic.err" "the kernel panicked while running sh -c"
check "... and why" has "$tmp/panic.err" "Kernel panic - not syncing: sysrq triggered crash"
check "... with the console" has "$tmp/panic.err" "sysrq_handle_crash"
[ "$failed" = "$before" ] || show panic

# 4. A hang past --timeout.
start=$(date +%s)
run timeout --timeout 5 -- sleep 1000
elapsed=$(($(date +%s) - start))
before=$failed
check "a timeout exits 124" is "$rc" 124
check "... saying so" has "$tmp/timeout.err" "timeout: the VM was still running after 5 s"
check "... soon after the timeout (${elapsed} s)" test "$elapsed" -lt 30
[ "$failed" = "$before" ] || show timeout

# 5. A module that does not exist.
run module --modules strait_no_such_module -- true
before=$failed
check "a module that fails to load exits 122" is "$rc" 122
check "... naming it" has "$tmp/module.err" 'module "strait_no_such_module" failed to load'
check "... with modprobe's reason" has "$tmp/module.err" "not found in directory"
[ "$failed" = "$before" ] || show module

# 6. A VM that cannot boot: a copy of the cache whose vmlinux is garbage (qemu refuses it).
real=""
for d in "${STRAIT_VM_CACHE:-/var/cache/strait-vm}"/*_*; do
  [ -f "$d/format" ] && [ -f "$d/vmlinux" ] && real=$d
done
if [ -n "$real" ]; then
  release=$(cat "$real/release")
  fake=$tmp/cache/${release}_broken
  mkdir -p "$fake"
  cp "$real/format" "$real/release" "$fake/"
  ln -s "$real/lib" "$fake/lib"
  head -c 4096 /dev/urandom >"$fake/vmlinux"
  STRAIT_VM_CACHE=$tmp/cache STRAIT_VM_KERNEL=$release run noboot -- true
  before=$failed
  check "a VM that does not boot exits 121" is "$rc" 121
  check "... saying so, with qemu's words" has "$tmp/noboot.err" "the VM did not boot"
  [ "$failed" = "$before" ] || show noboot
else
  check "the first run left a kernel cache to break" false
fi

# 7. Bad usage: no boot at all.
run usage --no-such-option -- true
check "bad usage exits 125" is "$rc" 125
run nocommand --modules ipip
check "a missing COMMAND exits 125" is "$rc" 125

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
