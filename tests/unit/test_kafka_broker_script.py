"""scripts/kafka_broker.py pieces that need no broker."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def load_script(name="kafka_broker"):
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))  # the script imports its siblings
    return importlib.import_module(name)


class Scripts:
    """kafka_broker.py and kafka_cluster.py as one namespace, as the tests use them."""

    def __getattr__(self, name):
        broker = load_script()
        if hasattr(broker, name):
            return getattr(broker, name)
        return getattr(load_script("kafka_cluster"), name)


def test_cluster_ids_never_start_with_a_dash_the_storage_tool_would_take_for_an_option():
    ids = [load_script().new_cluster_id() for _ in range(5000)]  # about 1 in 64 would
    assert not any(i.startswith("-") for i in ids)
    assert all(len(i) == 22 for i in ids) and len(set(ids)) == len(ids)


def test_a_broker_alone_keeps_its_single_node_settings(tmp_path):
    kafka = Scripts()
    settings = kafka.Broker(tmp_path, port=19092).server_properties()
    assert settings["node.id"] == "1"
    assert settings["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert settings["offsets.topic.replication.factor"] == "1"
    assert settings["transaction.state.log.min.isr"] == "1"
    assert "default.replication.factor" not in settings
    assert kafka.Broker(tmp_path).heap == kafka.JVM_HEAP


def test_cluster_nodes_share_one_quorum_and_replicate_the_internal_topics(tmp_path):
    kafka = Scripts()
    ports = [(20001, 20002), (20003, 20004), (20005, 20006)]
    cluster = kafka.Cluster(tmp_path, brokers=3, ports=ports)
    voters = "1@127.0.0.1:20002,2@127.0.0.1:20004,3@127.0.0.1:20006"
    assert cluster.bootstrap == "127.0.0.1:20001,127.0.0.1:20003,127.0.0.1:20005"
    assert len({broker.cluster_id for broker in cluster.brokers}) == 1
    for node, broker in enumerate(cluster.brokers, 1):
        settings = broker.server_properties()
        client, controller = ports[node - 1]
        assert broker.home == tmp_path.resolve() / f"node-{node}"
        assert settings["node.id"] == str(node) and broker.node_id == node
        assert settings["controller.quorum.voters"] == voters
        assert settings["listeners"] == (
            f"PLAINTEXT://127.0.0.1:{client},CONTROLLER://127.0.0.1:{controller}"
        )
        assert settings["log.dirs"] == str(tmp_path.resolve() / f"node-{node}" / "data")
        for topic in ("offsets.topic", "transaction.state.log", "share.coordinator.state.topic"):
            assert settings[f"{topic}.replication.factor"] == "3", topic
        assert settings["transaction.state.log.min.isr"] == "2"
        assert settings["default.replication.factor"] == "3"
        assert broker.heap == kafka.CLUSTER_HEAP
    assert cluster.node(2) is cluster.brokers[1]
    with pytest.raises(KeyError):
        cluster.node(4)


def test_small_clusters_never_ask_for_more_replicas_than_nodes():
    kafka = Scripts()
    two = kafka.cluster_properties(2)
    assert two["offsets.topic.replication.factor"] == 2
    assert two["transaction.state.log.min.isr"] == 2
    one = kafka.cluster_properties(1)
    assert one["transaction.state.log.replication.factor"] == 1
    assert one["transaction.state.log.min.isr"] == 1
    with pytest.raises(ValueError):
        kafka.cluster_properties(0)


def test_extra_properties_override_the_cluster_defaults(tmp_path):
    kafka = Scripts()
    cluster = kafka.Cluster(tmp_path, brokers=3, properties={"broker.session.timeout.ms": 9000})
    assert cluster.node(3).server_properties()["broker.session.timeout.ms"] == "9000"
    ports = {p for b in cluster.brokers for p in (b.port, b.controller_port)}
    assert len(ports) == 6  # free ports, all distinct


def test_command_line_ports_of_a_cluster():
    kafka = Scripts()
    assert kafka.cli_ports(3, 9092, None) == [(9092, 9093), (9094, 9095), (9096, 9097)]
    assert kafka.cli_ports(2, 9092, 19000) == [(9092, 19000), (9094, 19001)]
    free = kafka.cli_ports(3, 0, None)
    assert len({p for pair in free for p in pair}) == 6


def test_a_formatted_cluster_keeps_its_id_and_is_found_from_its_home(tmp_path):
    kafka = Scripts()
    ports = [(21001, 21002), (21003, 21004), (21005, 21006)]
    first = kafka.Cluster(tmp_path, brokers=3, ports=ports)
    for broker in first.brokers:
        broker.write_config()
    data = first.node(2).data_dir
    data.mkdir(parents=True)
    (data / "meta.properties").write_text("version=1\ncluster.id=AbCdEfGhIjKlMnOpQrStUv\n")
    found = kafka.Cluster.from_home(tmp_path)
    assert found is not None and found.cluster_id == "AbCdEfGhIjKlMnOpQrStUv"
    assert [(b.node_id, b.port, b.controller_port) for b in found.brokers] == [
        (n, c, k) for n, (c, k) in enumerate(ports, 1)
    ]
    assert found.running_nodes() == []
    assert kafka.Cluster.from_home(tmp_path / "elsewhere") is None


def test_kill_and_stop_of_a_broker_that_does_not_run(tmp_path):
    kafka = Scripts()
    broker = kafka.Broker(tmp_path, port=19092)
    broker.pid_file.write_text("999999999\n")  # stale
    assert broker.kill() is None and not broker.pid_file.exists()
    cluster = kafka.Cluster(tmp_path / "c", brokers=3)
    with pytest.raises(kafka.BrokerError, match="node 2 is not running"):
        cluster.kill(2)


def run_script(*args):
    return subprocess.run(
        [sys.executable, str(SCRIPTS / "kafka_broker.py"), *map(str, args)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize("count", ["0", "10", "three"])
def test_a_bad_node_count_is_refused_in_one_line(tmp_path, count):
    result = run_script("up", "--brokers", count, "--home", tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "--brokers" in result.stderr.strip().splitlines()[-1]
    assert not any(tmp_path.iterdir())


def test_up_refuses_another_size_on_a_cluster_home_and_status_reports_it_stopped(tmp_path):
    kafka = Scripts()
    for broker in kafka.Cluster(tmp_path, brokers=3).brokers:
        broker.write_config()
    result = run_script("up", "--brokers", "2", "--home", tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip() == (
        f"kafka: {tmp_path.resolve()} holds a cluster of 3 nodes, not 2; give another --home"
    )
    status = run_script("status", "--home", tmp_path)
    assert status.returncode == 1
    lines = status.stdout.splitlines()
    assert [line.split(" (")[0] for line in lines[:3]] == [
        f"kafka: node {n} not running" for n in (1, 2, 3)
    ]
    assert lines[3].startswith("kafka: 0 of 3 nodes running")
    down = run_script("down", "--home", tmp_path)
    assert down.returncode == 0 and down.stdout.startswith("kafka: no node running")


def test_a_cluster_is_refused_on_a_single_brokers_home(tmp_path):
    load_script().Broker(tmp_path, port=19092).write_config()
    result = run_script("up", "--brokers", "3", "--home", tmp_path)
    assert result.returncode == 2
    assert "holds a single broker" in result.stderr


def test_kafka_opts_add_jvm_options_split_on_spaces(tmp_path, monkeypatch):
    """KAFKA_OPTS, as Kafka's own scripts take it: its options after the defaults, for the
    broker and the storage tool alike; without it, the defaults alone."""
    kafka = Scripts()
    broker = kafka.Broker(tmp_path, port=19092)
    monkeypatch.delenv("KAFKA_OPTS", raising=False)
    plain = broker._java(kafka.MAIN_CLASS, "server.properties")
    monkeypatch.setenv("KAFKA_OPTS", " -XX:TieredStopAtLevel=1  -Dx=y ")
    for main_class in (kafka.MAIN_CLASS, kafka.STORAGE_TOOL_CLASS):
        command = broker._java(main_class)
        at = command.index("-XX:TieredStopAtLevel=1")
        assert command[at + 1] == "-Dx=y" and command.index(main_class) > at + 1
        assert command.index(kafka.JVM_OPTIONS[-1]) < at  # after the defaults: it overrides
    assert "-XX:TieredStopAtLevel=1" not in plain
