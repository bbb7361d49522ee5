"""scripts/kafka_broker.py pieces that need no broker."""

import importlib
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def load_script():
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))  # the script imports its siblings
    return importlib.import_module("kafka_broker")


def test_cluster_ids_never_start_with_a_dash_the_storage_tool_would_take_for_an_option():
    ids = [load_script().new_cluster_id() for _ in range(5000)]  # about 1 in 64 would
    assert not any(i.startswith("-") for i in ids)
    assert all(len(i) == 22 for i in ids) and len(set(ids)) == len(ids)
