#!/usr/bin/env bash
# Role READMEs: the part between the lines <!-- BEGIN_ANSIBLE_DOCS --> and <!-- END_ANSIBLE_DOCS --> of
# roles/<role>/README.md is generated from roles/<role>/meta/argument_specs.yml by aar-doc (pinned in
# requirements-dev.txt) with the template scripts/role-docs/role-readme.md.j2; the text around it is
# written by hand and left alone.
#   role-docs.sh [ROLE_DIR...]          regenerate (default: every role under roles/); rewrites only stale READMEs
#   role-docs.sh --check [ROLE_DIR...]  regenerate into a temporary copy; fail, with the diff, when a README differs
set -euo pipefail
. "$(dirname "$0")/lib.sh"

TEMPLATE="$ROOT/scripts/role-docs/role-readme.md.j2"
BEGIN='<!-- BEGIN_ANSIBLE_DOCS -->'
END='<!-- END_ANSIBLE_DOCS -->'

check=false
if [ "${1:-}" = --check ]; then check=true; shift; fi
case "${1:-}" in -*) die "usage: $0 [--check] [ROLE_DIR...]" ;; esac
roles=("$@")
if [ ${#roles[@]} -eq 0 ]; then
  for d in "$ROOT"/roles/*/meta/argument_specs.yml; do roles+=("${d%/meta/argument_specs.yml}"); done
fi

use_venv
command -v aar-doc >/dev/null || die "aar-doc is not in $VENV: run 'make setup' (it installs requirements-dev.txt)"
# Another aar-doc release may render the same template differently: only the pinned one decides.
want=$(sed -n 's/^aar-doc==\([^ ;#]*\).*/\1/p' "$ROOT/requirements-dev.txt")
have=$(python3 -c 'import importlib.metadata as m; print(m.version("aar-doc"))')
[ "$have" = "$want" ] || die "aar-doc $have in $VENV, requirements-dev.txt pins $want: run 'make setup'"
[ -f "$TEMPLATE" ] || die "template $TEMPLATE is missing"  # aar-doc would take a missing path as the template text

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Shown relative to the checkout when inside it.
show() { local p; p=$(realpath -m "$1"); printf '%s' "${p#"$ROOT"/}"; }

# 1. Each README into its own temporary copy, every role at once (aar-doc takes about 0.4 s of CPU each).
dirs=() pids=()
for i in "${!roles[@]}"; do
  dir=$(realpath -m "${roles[$i]}")
  [ -f "$dir/meta/argument_specs.yml" ] || die "$(show "$dir"): no meta/argument_specs.yml"
  dirs+=("$dir")
  mkdir "$tmp/$i"
  if [ -f "$dir/README.md" ]; then
    cp "$dir/README.md" "$tmp/$i/README.md"
  else  # a new role: a title, then the generated part; write the prose above it
    printf '# llmops.devbox.%s\n\n%s\n%s\n' "$(basename "$dir")" "$BEGIN" "$END" >"$tmp/$i/README.md"
  fi
  cp "$tmp/$i/README.md" "$tmp/$i/before"
  for marker in "$BEGIN" "$END"; do
    n=$(grep -cxF "$marker" "$tmp/$i/README.md" || true)
    [ "$n" -eq 1 ] || die "$(show "$dir/README.md") has $n lines '$marker', needs exactly one (the generated part goes between the two)"
  done
  # From an empty directory, so that no .aar_doc.yml config file there changes the options.
  (cd "$tmp/$i" && exec aar-doc --output-file "$tmp/$i/README.md" --output-template "$TEMPLATE" --output-mode inject \
     "$dir" markdown >"$tmp/$i/log" 2>&1) &
  pids+=($!)
done

# 2. Compare, in the order given.
stale=()
for i in "${!dirs[@]}"; do
  readme="${dirs[$i]}/README.md" out="$tmp/$i/README.md"
  wait "${pids[$i]}" || { cat "$tmp/$i/log" >&2; die "aar-doc failed on $(show "${dirs[$i]}")"; }
  if $check && [ ! -f "$readme" ]; then
    say "$(show "$readme") is missing"; stale+=("$(show "$readme")")
  elif ! cmp -s "$out" "$readme"; then
    if $check; then
      diff -u --label "$(show "$readme")" --label "$(show "$readme") (regenerated)" "$readme" "$out" || true
      stale+=("$(show "$readme")")
    else
      # Someone may be editing the prose right now: never overwrite what was not read.
      [ ! -f "$readme" ] || cmp -s "$tmp/$i/before" "$readme" || die "$(show "$readme") changed while generating: rerun"
      cp "$out" "$readme"
      say "updated $(show "$readme")"
    fi
  fi
done

if [ ${#stale[@]} -gt 0 ]; then
  if [ $# -eq 0 ]; then cmd="make role-docs' (scripts/role-docs.sh)"; else cmd="scripts/role-docs.sh $*'"; fi
  say "stale: ${stale[*]} (not what meta/argument_specs.yml and the template generate now)"
  say "run '$cmd and commit the READMEs; edit them by hand only outside the $BEGIN / $END lines"
  exit 1
fi
$check && say "role READMEs up to date (${#roles[@]} roles)"
exit 0
