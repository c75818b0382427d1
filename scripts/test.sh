#!/usr/bin/env bash
# Runs every test: lint, sanity, unit + integration tests, Molecule scenarios, collection build.
#   test.sh            all stages
#   test.sh STAGE...   only these (lint sanity pytest molecule demo build); MOLECULE_SCENARIOS="a b" narrows Molecule
# Every stage runs even when an earlier one failed; the exit code is non-zero if any failed.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

"$ROOT/scripts/setup.sh" || die "set-up failed"
use_venv

passed=0 failed=0 failures=()
stage() {  # stage NAME CMD...
  local name=$1; shift
  local start=$SECONDS
  say "[$name] $*"
  if "$@"; then
    passed=$((passed + 1)); say "[$name] passed in $((SECONDS - start)) s"
  else
    failed=$((failed + 1)); failures+=("$name"); say "[$name] FAILED after $((SECONDS - start)) s"
  fi
}

run_sanity() {
  # ansible-test insists on running from ansible_collections/<ns>/<name>: test a copy of the tree,
  # outside this git checkout (inside it, ansible-test would list files with git and find none).
  local top="${TMPDIR:-/tmp}/llmops-devbox-sanity" dest
  dest="$top/ansible_collections/llmops/devbox"
  rm -rf "$top" && mkdir -p "$dest"
  git ls-files -co --exclude-standard -z | xargs -0 -I{} cp --parents {} "$dest/" 2>/dev/null
  (cd "$dest" && ansible-test sanity --python "$(python3 -c 'import sys;print(f"{sys.version_info[0]}.{sys.version_info[1]}")')" \
     --requirements --color no plugins/ >"$CACHE/sanity.log" 2>&1) \
    || { tail -40 "$CACHE/sanity.log"; return 1; }
  grep -E '^(Running|ERROR)' "$CACHE/sanity.log" | tail -40
}

run_pytest() {
  # The slowest tests are printed: the CI budget (60 min) is tight. Unit tests run on two workers, each
  # test file on one (their module fixtures render a role once per file); the integration tests share
  # Docker stacks with fixed names and run alone.
  local rc=0 part
  pytest -q -n 2 --dist loadfile --durations=12 tests/unit || rc=$?
  [ $rc -eq 5 ] && say "pytest collected no unit tests" && return 1
  pytest -q --durations=12 tests/integration || part=$?
  [ "${part:-0}" -eq 5 ] && say "pytest collected no integration tests" && return 1
  [ $rc -ne 0 ] && return $rc
  return "${part:-0}"
}

run_molecule() {
  "$ROOT/scripts/build-images.sh" || return 1
  local scenarios=${MOLECULE_SCENARIOS:-} s rc=0
  if [ -z "$scenarios" ]; then
    scenarios=$(for d in molecule/*/molecule.yml; do basename "$(dirname "$d")"; done | tr '\n' ' ')
  fi
  for s in $scenarios; do
    local start=$SECONDS
    if molecule test -s "$s"; then say "molecule $s passed in $((SECONDS - start)) s"
    else say "molecule $s FAILED after $((SECONDS - start)) s"; rc=1; fi
  done
  return $rc
}

# `make demo` as the README gives it, on a target of its own (tests/demo); after Molecule, which builds the images.
run_demo() {
  "$ROOT/scripts/build-images.sh" || return 1
  pytest -q -s tests/demo
}

run_build() {
  mkdir -p "$CACHE/dist" && ansible-galaxy collection build --force --output-path "$CACHE/dist" .
}

stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(lint sanity pytest molecule demo build)
for s in "${stages[@]}"; do
  case "$s" in
  lint)
    stage yamllint yamllint -s .
    # ansible.cfg makes a missing inventory an error; lint's syntax checks get the example one.
    stage ansible-lint env ANSIBLE_INVENTORY="$ROOT/inventory.example" ansible-lint
    stage ruff ruff check .
    stage role-docs "$ROOT/scripts/role-docs.sh" --check
    ;;
  sanity) stage sanity run_sanity ;;
  pytest) stage pytest run_pytest ;;
  molecule) stage molecule run_molecule ;;
  demo) stage demo run_demo ;;
  build) stage build run_build ;;
  *) die "unknown stage $s (lint sanity pytest molecule demo build)" ;;
  esac
done

echo
[ $failed -eq 0 ] || say "failed stages: ${failures[*]}"
echo "stages: $passed passed, $failed failed"
[ $failed -eq 0 ]
