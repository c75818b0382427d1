"""Load the test doubles' programs (tests/images/<name>/<module>.py) as modules."""

import importlib.util
from pathlib import Path

import pytest

IMAGES = Path(__file__).resolve().parents[2] / "images"


def _load(folder: str, module: str):
    spec = importlib.util.spec_from_file_location(module, IMAGES / folder / f"{module}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def minio():
    return _load("minio-double", "minio_double")


@pytest.fixture(scope="session")
def clickhouse():
    return _load("clickhouse-double", "clickhouse_double")


@pytest.fixture(scope="session")
def langfuse():
    return _load("langfuse-double", "langfuse_double")
