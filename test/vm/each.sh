#!/usr/bin/env bash
# Runs several commands in one VM boot (scripts/vm runs one COMMAND, and a boot under TCG is
# the expensive part): each in turn, all of them even after one fails, and exits 1 naming the
# ones that failed.
#
#   each.sh COMMAND [ARG]... [--then COMMAND [ARG]...]...
set -uo pipefail
failed=()
run() {
  [ $# -gt 0 ] || return 0
  local start=$SECONDS rc=0
  "$@" || rc=$?
  echo "each.sh: exit status $rc after $((SECONDS - start)) s: $*"
  [ "$rc" = 0 ] || failed+=("$* (exit status $rc)")
}
cmd=()
for a in "$@"; do
  if [ "$a" = --then ]; then
    run "${cmd[@]}"
    cmd=()
  else
    cmd+=("$a")
  fi
done
run "${cmd[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  printf 'each.sh: failed: %s\n' "${failed[@]}" >&2
  exit 1
fi
