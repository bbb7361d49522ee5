"""scripts/kafka_broker.py pieces that need no broker."""

import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "kafka_broker.py"


def load_script():
    name = "marketpulse_scripts_kafka_broker"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SCRIPT)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_cluster_ids_never_start_with_a_dash_the_storage_tool_would_take_for_an_option():
    ids = [load_script().new_cluster_id() for _ in range(5000)]  # about 1 in 64 would
    assert not any(i.startswith("-") for i in ids)
    assert all(len(i) == 22 for i in ids) and len(set(ids)) == len(ids)
