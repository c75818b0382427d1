#!/usr/bin/env bash
# `make demo`: deploy the whole stack (site.yml) on a local EC2-like target reached over SSH.
#   demo.sh up    build images, start target llmops-demo, write .demo/inventory.ini, run site.yml
#   demo.sh down  remove the target and its data
# LLMOPS_DEMO_NAME and LLMOPS_DEMO_DIR choose another target and folder (tests/demo runs `make demo` so,
# next to a demo of your own).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
use_venv
NAME=${LLMOPS_DEMO_NAME:-llmops-demo}
DEMO=${LLMOPS_DEMO_DIR:-$ROOT/.demo}

case "${1:-up}" in
up)
  start=$SECONDS
  "$ROOT/scripts/build-images.sh"
  ip=$("$ROOT/scripts/target.sh" create "$NAME" | tail -1)
  mkdir -p "$DEMO"
  cat >"$DEMO/inventory.ini" <<INI
# Written by scripts/demo.sh: one all-in-one box (the local target container).
[langfuse]
$NAME ansible_host=$ip

[devboxes]
$NAME

[all:vars]
ansible_user=admin
ansible_ssh_private_key_file=$CACHE/ssh/id_ed25519
ansible_ssh_common_args=-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
INI
  # The demo's settings and the test images (llmops-test/..., from the one list of them) as the
  # inventory's group_vars, so every later command with this inventory (a config push with
  # site.yml --tags litellm, the ops playbooks) deploys the same.
  mkdir -p "$DEMO/group_vars/all"
  cp "$ROOT/tests/demo-vars.yml" "$DEMO/group_vars/all/demo-vars.yml"
  cp "$ROOT/tests/test-images.yml" "$DEMO/group_vars/all/test-images.yml"
  say "preparing the target (Docker + images)"
  ansible-playbook -i "$DEMO/inventory.ini" "$ROOT/molecule/shared/preload.yml"
  say "running site.yml"
  ansible-playbook -i "$DEMO/inventory.ini" "$ROOT/site.yml"
  ansible-playbook -i "$DEMO/inventory.ini" "$ROOT/playbooks/port_forward.yml"
  say "demo deployed in $((SECONDS - start)) s; remove it with: make demo-down"
  say "inventory of this demo: $DEMO/inventory.ini (rerun: ansible-playbook -i $DEMO/inventory.ini site.yml)"
  ;;
down)
  "$ROOT/scripts/target.sh" destroy "$NAME"
  rm -rf "$DEMO"
  ;;
*) die "usage: $0 up|down" ;;
esac
