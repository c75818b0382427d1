"""Which models of a LiteLLM config would be logged at $0 (llmops.devbox).

Run inside the proxy image, offline (LITELLM_LOCAL_MODEL_COST_MAP=True): prints a JSON list with
one {"model_name", "model"} per model_list entry that has no price of its own in litellm_params
and none in the cost map shipped with this LiteLLM release. The role shows it as a warning.
Usage: python3 llmops_price_check.py CONFIG.yml
"""

from __future__ import annotations

import json
import sys

# litellm_params keys that price a model themselves (LiteLLM custom pricing).
OWN_PRICE_KEYS = (
    "input_cost_per_token",
    "output_cost_per_token",
    "input_cost_per_second",
    "output_cost_per_second",
)


def _positive(value) -> bool:
    try:
        return float(value) > 0
    except (TypeError, ValueError):
        return False


def _info(lookup, model: str) -> dict:
    """The cost-map entry, or {} for a model the map does not know (LiteLLM raises for those)."""
    try:
        return lookup(model) or {}
    except Exception as error:  # noqa: BLE001 - any failure means "no price known"
        print(f"no cost-map entry for {model}: {error}", file=sys.stderr)
        return {}


def unpriced(model_list, lookup) -> list[dict]:
    """Entries of model_list that no price covers; lookup(model) returns a cost-map entry or raises."""
    missing = []
    for entry in model_list or []:
        params = entry.get("litellm_params") or {}
        if any(_positive(params.get(key)) for key in OWN_PRICE_KEYS):
            continue
        # model_info.base_model prices a deployment as another model (LiteLLM's own convention).
        candidates = [(entry.get("model_info") or {}).get("base_model"), params.get("model")]
        priced = False
        for model in filter(None, candidates):
            info = _info(lookup, str(model))
            if _positive(info.get("input_cost_per_token")) or _positive(info.get("output_cost_per_token")):
                priced = True
                break
        if not priced:
            missing.append({"model_name": entry.get("model_name"), "model": params.get("model")})
    return missing


def main(path: str) -> int:
    import litellm  # the proxy image's LiteLLM and its shipped cost map
    import yaml

    with open(path, encoding="utf-8") as handle:
        config = yaml.safe_load(handle) or {}
    print(json.dumps(unpriced(config.get("model_list"), lambda model: litellm.get_model_info(model=model))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
