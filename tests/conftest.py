"""Make `ansible_collections.llmops.devbox` importable from a clone (scripts/setup.sh links it)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / ".collections"))
