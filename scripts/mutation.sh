#!/usr/bin/env bash
# Mutation testing of plugins/ (modules and module_utils) with mutmut, against the unit tests in
# tests/unit/plugins. Slow (about an hour on 2 CPUs): not part of `make test` or CI.
#   scripts/mutation.sh                   a fresh run over every mutant
#   MUTATION_JOBS=N scripts/mutation.sh   N parallel workers (default: the number of CPUs)
#   MUTATION_PATHS="plugins/modules/x.py ..." scripts/mutation.sh
#                                         only these files or folders (default: modules, module_utils)
#   MUTATION_SELECT="*find_generation* *wait_visible*" scripts/mutation.sh
#                                         only the mutants of these functions (mutmut name patterns)
# Prints `mutation score: K killed of N (P %)`, where killed counts the mutants the tests caught
# (a failing test, or a test that ran into mutmut's timeout); `mutmut results` and `mutmut show
# NAME` in .cache/mutation list and show the survivors.
#
# How it fits this layout:
# - mutmut names a mutant after its file's path, and the tests import the collection as
#   ansible_collections.llmops.devbox...: so mutmut runs in .cache/mutation, where
#   ansible_collections/llmops/devbox links back to this checkout, and mutates
#   ansible_collections/llmops/devbox/plugins/{modules,module_utils}. Everything it writes
#   (mutants/, its stats) stays in .cache/mutation.
# - The module tests run each module's main() in a subprocess (tests/unit/httpserver.py
#   run_module). mutmut only sees and switches mutants inside the pytest process, so for this run a
#   conftest.py at the top of mutants/ replaces run_module by an in-process call of the same main()
#   (same arguments on the same AnsibleModule entry point, stdout captured, SystemExit as the rc,
#   and run_module's timeout raising the same subprocess.TimeoutExpired).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

MUTMUT_VERSION=3.8.1  # supports Python 3.10+; the tool venv runs 3.11
[ -x "$VENV/bin/python" ] || die "no tool venv at $VENV: run 'make setup' first"
if [ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("mutmut"))' 2>/dev/null)" \
     != "$MUTMUT_VERSION" ]; then
  say "installing mutmut $MUTMUT_VERSION into $VENV"
  "$VENV/bin/python" -m pip install --quiet "mutmut==$MUTMUT_VERSION" || die "could not install mutmut"
fi

WORK="$CACHE/mutation"
rm -rf "$WORK/mutants"  # a fresh run each time: every mutant is tested against the current tests
mkdir -p "$WORK/ansible_collections/llmops"
ln -sfn ../../../.. "$WORK/ansible_collections/llmops/devbox"  # .cache/mutation/ansible_collections/llmops -> checkout

COLL=ansible_collections/llmops/devbox
SOURCES=""
for p in ${MUTATION_PATHS:-plugins/modules plugins/module_utils}; do
  [ -e "$p" ] || die "MUTATION_PATHS: no such file or folder: $p"
  SOURCES+="    $COLL/$p"$'\n'
done
# Directories before files: mutmut copies a file into its directory, which must exist by then.
cat >"$WORK/setup.cfg" <<EOF
[mutmut]
source_paths =
${SOURCES}also_copy =
    $COLL/plugins/module_utils
    $COLL/plugins/modules
    $COLL/tests/unit/plugins
    $COLL/tests/conftest.py
    $COLL/tests/allowed-skips.txt
    $COLL/tests/unit/httpserver.py
    conftest.py
pytest_add_cli_args_test_selection = $COLL/tests/unit/plugins
pytest_add_cli_args =
    -p
    no:cacheprovider
EOF

cat >"$WORK/conftest.py" <<'EOF'
"""Written by scripts/mutation.sh: module tests run main() in this process, where mutmut works."""

import contextlib
import importlib
import io
import json
import os
import signal
import subprocess

import ansible_collections.llmops.devbox.tests.unit.httpserver as httpserver


def run_module_in_process(name, args, check_mode=False, diff=False, timeout=120):
    from ansible.module_utils import _internal, basic
    from ansible.module_utils.common import warnings

    module = importlib.import_module(f"ansible_collections.llmops.devbox.plugins.modules.{name}")
    payload = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
    basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": payload}).encode("utf-8")
    basic._ANSIBLE_PROFILE = "legacy"
    warnings._global_warnings.clear()
    warnings._global_deprecations.clear()
    saved = {k: os.environ.get(k) for k in ("NO_PROXY", "no_proxy")}
    os.environ.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    out = io.StringIO()
    rc = 0

    def too_slow(signum, frame):
        raise subprocess.TimeoutExpired(f"llmops.devbox.{name} (in process)", timeout)

    # A test that imported controller code (ansible.template, filters...) flips this for the whole
    # process; a module process never has it (warnings would go to a Display instead of the result).
    was_controller, _internal.is_controller = _internal.is_controller, False
    previous_handler = signal.signal(signal.SIGALRM, too_slow)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        with contextlib.redirect_stdout(out):
            module.main()
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        _internal.is_controller = was_controller
        basic._ANSIBLE_ARGS = basic._ANSIBLE_PROFILE = None
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    try:
        return rc, json.loads(out.getvalue())
    except ValueError:
        raise AssertionError(f"module {name} printed no JSON (rc {rc}): {out.getvalue()!r}") from None


httpserver.run_module = run_module_in_process
EOF

JOBS=${MUTATION_JOBS:-$(nproc)}
LOG="$WORK/mutmut.log"
say "mutmut $MUTMUT_VERSION over plugins/ with $JOBS workers (log: ${LOG#"$ROOT"/})"
start=$SECONDS
rc=0
# shellcheck disable=SC2086 # MUTATION_SELECT is a list of patterns, quoted so the shell does not expand them
(cd "$WORK" && set -f && "$VENV/bin/mutmut" run --max-children "$JOBS" ${MUTATION_SELECT:-}) >"$LOG" 2>&1 || rc=$?
elapsed=$((SECONDS - start))
# mutmut redraws a spinner line with \r: show its messages and the last state of its counts.
tr '\r' '\n' <"$LOG" | grep -v '^\s*$' | grep -v '^[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] ' | tail -8 >&2
tr '\r' '\n' <"$LOG" | grep '^[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] [0-9]' | tail -1 | sed 's/^[^ ]* //' >&2
[ $rc -eq 0 ] || die "mutmut failed (exit $rc); see $LOG"

(cd "$WORK" && "$VENV/bin/python" - "$elapsed") <<'EOF'
import json
import sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

CAUGHT = ("killed", "timeout")
counts, per_file = Counter(), {}
for meta in sorted(Path("mutants").rglob("*.py.meta")):
    name = str(meta.relative_to("mutants/ansible_collections/llmops/devbox"))[: -len(".meta")]
    file_counts = per_file[name] = Counter()
    for code in json.loads(meta.read_text())["exit_code_by_key"].values():
        if code is not None:  # None: not run (outside MUTATION_SELECT)
            file_counts[status_by_exit_code[code]] += 1
    counts.update(file_counts)
total = sum(counts.values())
if not total:
    sys.exit("mutmut made no mutants")
for name, c in per_file.items():
    n = sum(c.values())
    if n:
        print(f"  {name}: {sum(c[s] for s in CAUGHT)} killed of {n}, {c['survived']} survived")
killed = sum(counts[s] for s in CAUGHT)
print(f"mutation score: {killed} killed of {total} ({100 * killed / total:.1f} %)")
rest = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if s not in CAUGHT)
print(f"  ({counts['killed']} by a failing test, {counts['timeout']} by a timeout; {rest or 'no others'};"
      f" {sys.argv[1]} s)")
EOF
