"""A local KRaft cluster of :class:`~kafka_broker.Broker` nodes, for tests that lose a node.

``python3 scripts/kafka_broker.py up --brokers 3`` starts one; tests import
:class:`Cluster` with ``scripts/`` on ``sys.path``. Each node is both broker and
KRaft controller (a three-voter quorum for three nodes); internal topics are
replicated up to three times (:func:`cluster_properties`), so the cluster
survives losing a node as a real one does. Standard library only, as
``kafka_broker.py``.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import struct
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from kafka_broker import (
    CLUSTER_HEAP,
    CLUSTER_SESSION_TIMEOUT_MS,
    HOST,
    KAFKA_VERSION,
    Broker,
    BrokerError,
    _signal_group,
    cli_ports,
    new_cluster_id,
)
from kafka_wire import Wire

logger = logging.getLogger("marketpulse.kafka_broker")


@dataclass(frozen=True)
class PartitionState:
    """Who holds one partition: its leader (-1: none), its replicas and the in-sync ones."""

    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


def read_cluster_id(data_dir: Path) -> str | None:
    """Return the cluster id a formatted KRaft storage holds (``meta.properties``), or None."""
    try:
        text = (Path(data_dir) / "meta.properties").read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "cluster.id" and value.strip():
            return value.strip()
    return None


def cluster_properties(size: int) -> dict[str, object]:
    """Return what each node of a ``size``-node cluster sets beyond the single-node defaults.

    Internal topics (consumer offsets, transaction state, share-group state) get up to
    three replicas and, with more than one node, ``min.insync.replicas`` 2, so they survive
    a node's loss as the topics of a real cluster do; a node that stops heartbeating is
    fenced after :data:`CLUSTER_SESSION_TIMEOUT_MS`, so its partitions move soon.
    """
    if size < 1:
        raise ValueError(f"a cluster needs at least one node, not {size}")
    replicas, min_isr = min(3, size), min(2, size)
    return {
        "default.replication.factor": replicas,
        "offsets.topic.replication.factor": replicas,
        "transaction.state.log.replication.factor": replicas,
        "transaction.state.log.min.isr": min_isr,
        "share.coordinator.state.topic.replication.factor": replicas,
        "share.coordinator.state.topic.min.isr": min_isr,
        "broker.session.timeout.ms": CLUSTER_SESSION_TIMEOUT_MS,
        "broker.heartbeat.interval.ms": 1000,
    }


def _listener_ports(config_file: Path) -> tuple[int, int, int] | None:
    """Return (node id, client port, controller port) from a node's server.properties."""
    try:
        text = config_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    settings = dict(line.partition("=")[::2] for line in text.splitlines() if "=" in line)
    ports = {}
    for listener in settings.get("listeners", "").split(","):
        name, _, address = listener.partition("://")
        with contextlib.suppress(ValueError):
            ports[name.strip()] = int(address.rsplit(":", 1)[-1])
    try:
        return int(settings["node.id"]), ports["PLAINTEXT"], ports["CONTROLLER"]
    except (KeyError, ValueError):
        return None


class Cluster:
    """A local KRaft cluster: ``brokers`` nodes, each both broker and controller.

    Node ``i`` (from 1) is a :class:`Broker` with ``node.id`` ``i`` under
    ``home/node-i``; all of them are voters of one controller quorum and share one
    cluster id (read back from a node's storage when the home was formatted before).

    Args:
        home: Directory holding one ``node-<id>`` home per node.
        brokers: Number of nodes (3: a quorum that survives losing one).
        ports: ``(client port, controller port)`` of each node; free ports when None.
        version: Kafka release to fetch from Maven Central.
        properties: Extra ``server.properties`` entries for every node, overriding
            :func:`cluster_properties` and the single-node defaults.
        cache_root: Where the jars are cached (see :class:`Broker`).
        die_with_parent: See :class:`Broker`.
        heap: The JVM heap options of each node.
        broker_class: Builds each node from :class:`Broker`'s keyword arguments (a
            subclass, or a ``functools.partial`` of one that needs more).
    """

    def __init__(
        self,
        home: Path | str,
        brokers: int = 3,
        ports: Sequence[tuple[int, int]] | None = None,
        version: str = KAFKA_VERSION,
        properties: Mapping[str, object] | None = None,
        cache_root: Path | str | None = None,
        die_with_parent: bool = False,
        heap: Sequence[str] = CLUSTER_HEAP,
        broker_class=Broker,
    ):
        settings = {**cluster_properties(brokers), **(properties or {})}
        self.home = Path(home).resolve()
        if ports is None:
            ports = cli_ports(brokers, 0, None)
        ports = [(int(client), int(controller)) for client, controller in ports]
        if len(ports) != brokers:
            raise ValueError(f"{len(ports)} port pairs for {brokers} nodes")
        voters = ",".join(f"{i}@{HOST}:{c}" for i, (_, c) in enumerate(ports, 1))
        stored = (read_cluster_id(self.node_home(i) / "data") for i in range(1, brokers + 1))
        self.cluster_id = next((cid for cid in stored if cid), None) or new_cluster_id()
        self.brokers: list[Broker] = [
            broker_class(
                self.node_home(i), port=client, controller_port=controller, version=version,
                properties=settings, cache_root=cache_root, die_with_parent=die_with_parent,
                node_id=i, quorum_voters=voters, cluster_id=self.cluster_id, heap=heap,
            )
            for i, (client, controller) in enumerate(ports, 1)
        ]  # fmt: skip

    @classmethod
    def from_home(cls, home: Path | str, **options: object) -> Cluster | None:
        """Return the cluster whose nodes' configuration lies under ``home``, or None.

        Ports and node ids come from each node's ``server.properties``, as the last
        start wrote them; ``options`` go to the constructor.
        """
        home = Path(home)
        found = []
        for config in home.glob("node-*/config/server.properties"):
            read = _listener_ports(config)
            if read is not None and config.parents[1].name == f"node-{read[0]}":
                found.append(read)
        found.sort()
        if not found or [node for node, *_ in found] != list(range(1, len(found) + 1)):
            return None
        ports = [(client, controller) for _, client, controller in found]
        return cls(home, brokers=len(found), ports=ports, **options)

    def __repr__(self) -> str:
        return f"Cluster(home={str(self.home)!r}, brokers={len(self.brokers)})"

    def node_home(self, node_id: int) -> Path:
        """The home directory of node ``node_id``."""
        return self.home / f"node-{node_id}"

    @property
    def bootstrap(self) -> str:
        """The ``bootstrap.servers`` value naming every node."""
        return ",".join(broker.bootstrap for broker in self.brokers)

    def node(self, node_id: int) -> Broker:
        """Return node ``node_id`` (from 1).

        Raises:
            KeyError: There is no such node.
        """
        for broker in self.brokers:
            if broker.node_id == node_id:
                return broker
        raise KeyError(f"no node {node_id} in a cluster of {len(self.brokers)}")

    def running_nodes(self) -> list[int]:
        """The ids of the nodes whose process is alive."""
        return [broker.node_id for broker in self.brokers if broker.running()]

    def start(self, timeout: float = 120) -> Cluster:
        """Start every node that is not running and wait until each serves all of them.

        Raises:
            BrokerError: A port is taken, or a node exited or the cluster did not form in
                time; the nodes this call launched are stopped again.
        """
        began = time.monotonic()
        before = set(self.running_nodes())
        try:
            self.brokers[0].install()
            self._format_all()
            for broker in self.brokers:
                broker.launch()  # none serves before a quorum runs: launch all, then wait
            everyone = {broker.node_id for broker in self.brokers}
            for broker in self.brokers:
                self._wait_serving(broker, everyone, began + timeout)
        except BrokerError:
            self._stop_nodes([b for b in self.brokers if b.node_id not in before], timeout=10)
            raise
        logger.info(
            "cluster of %d nodes ready at %s in %.1f s",
            len(self.brokers), self.bootstrap, time.monotonic() - began,
        )  # fmt: skip
        return self

    def _format_all(self) -> None:
        """Format the nodes' storage side by side (each format is a JVM start of its own)."""
        waiting = [b for b in self.brokers if not b.running() and not b.formatted()]
        for broker in waiting:
            broker.write_config()
        with ThreadPoolExecutor(max_workers=max(len(waiting), 1)) as pool:
            for future in [pool.submit(broker.format_storage) for broker in waiting]:
                future.result()

    def kill(self, node_id: int) -> int:
        """SIGKILL node ``node_id`` (a crash) and return its pid once it has exited.

        Raises:
            BrokerError: The node was not running, or outlived the signal.
        """
        pid = self.node(node_id).kill()
        if pid is None:
            raise BrokerError(f"node {node_id} is not running")
        return pid

    def restart(self, node_id: int, timeout: float = 120) -> int:
        """Start node ``node_id`` again and wait until it is back among the cluster's brokers.

        Returns:
            The pid of the node.

        Raises:
            BrokerError: The node exited or did not rejoin in time (it is stopped again).
        """
        broker = self.node(node_id)
        pid = broker.launch()
        try:
            self._wait_serving(broker, {node_id}, time.monotonic() + timeout)
        except BrokerError:
            broker.stop(timeout=10)
            raise
        return pid

    def _wait_serving(self, broker: Broker, wanted: set[int], deadline: float) -> None:
        """Wait until ``broker`` answers with ``wanted`` among the unfenced brokers."""
        reason = "not probed yet"
        while time.monotonic() < deadline:
            if not broker.running():
                code = None if broker._process is None else broker._process.returncode
                raise BrokerError(
                    f"node {broker.node_id} exited early (exit {code})\n{broker._log_tails()}"
                )
            reason = _serving(broker.port, wanted)
            if reason is None:
                return
            time.sleep(0.25)
        raise BrokerError(
            f"node {broker.node_id} did not serve in time ({reason})\n{broker._log_tails()}"
        )

    def stop(self, timeout: float = 30) -> None:
        """Stop every node: SIGTERM to all at once, SIGKILL to those left after ``timeout``."""
        self._stop_nodes(self.brokers, timeout)

    def _stop_nodes(self, brokers: Sequence[Broker], timeout: float) -> None:
        # all at once: a node shutting down alone waits for a quorum the others may have left
        pids = {broker: broker.pid() for broker in brokers}
        for pid in pids.values():
            if pid is not None:
                _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for broker, pid in pids.items():
            if pid is not None and not broker._wait_exit(pid, deadline):
                logger.warning("node %d ignored SIGTERM for %.0f s; killing it", broker.node_id,
                               timeout)  # fmt: skip
                _signal_group(pid, signal.SIGKILL)
                broker._wait_exit(pid, time.monotonic() + 10)
            broker.pid_file.unlink(missing_ok=True)
            broker._process = None

    def partitions(self, topic: str, timeout: float = 10) -> dict[int, PartitionState]:
        """Return the leader, replicas and in-sync replicas of each partition of ``topic``.

        Asks the running nodes' metadata (through confluent-kafka, imported here: the rest
        of this script needs only the standard library).

        Raises:
            BrokerError: No node runs, or the topic does not exist.
        """
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self._running_bootstrap()})
        metadata = admin.list_topics(topic, timeout=timeout).topics.get(topic)
        if metadata is None or metadata.error is not None:
            raise BrokerError(f"topic {topic}: {getattr(metadata, 'error', 'missing')}")
        return {
            number: PartitionState(part.leader, tuple(part.replicas), tuple(part.isrs))
            for number, part in sorted(metadata.partitions.items())
        }

    def leaders(self, topic: str, timeout: float = 10) -> dict[int, int]:
        """Return the leader's node id of each partition of ``topic`` (-1: none now)."""
        return {p: state.leader for p, state in self.partitions(topic, timeout).items()}

    def elect_preferred_leaders(self, timeout: float = 60) -> None:
        """Give each partition back to its preferred (first) replica and wait until it has.

        A restarted node leads nothing until then (Kafka's own rebalance of leaders
        waits five minutes).

        Raises:
            BrokerError: The election failed, or some partition had another leader after
                ``timeout`` seconds.
        """
        from confluent_kafka import ElectionType, KafkaException
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self._running_bootstrap()})
        deadline = time.monotonic() + timeout
        elsewhere: list[str] = []
        while time.monotonic() < deadline:
            try:
                admin.elect_leaders(ElectionType.PREFERRED, None).result(timeout)
            except KafkaException as exc:  # per partition errors come back as values
                raise BrokerError(f"the preferred leader election failed: {exc}") from None
            metadata = admin.list_topics(timeout=10).topics
            elsewhere = [
                f"{name}[{number}]"
                for name, topic in metadata.items()
                for number, part in topic.partitions.items()
                if part.replicas and part.leader != part.replicas[0]
            ]
            if not elsewhere:
                return
            time.sleep(0.5)
        raise BrokerError(f"not led by their preferred replica: {', '.join(elsewhere[:10])}")

    def _running_bootstrap(self) -> str:
        running = [broker.bootstrap for broker in self.brokers if broker.running()]
        if not running:
            raise BrokerError("no node of the cluster is running")
        return ",".join(running)

    def wait_in_sync(self, topics: Sequence[str], timeout: float = 60) -> None:
        """Wait until every partition of ``topics`` has a leader and all replicas in sync.

        Raises:
            BrokerError: Some partition was still short of replicas after ``timeout``.
        """
        deadline = time.monotonic() + timeout
        short: dict[str, dict[int, PartitionState]] = {}
        while time.monotonic() < deadline:
            short = {}
            for topic in topics:
                lagging = {
                    p: state
                    for p, state in self.partitions(topic).items()
                    if state.leader < 0 or set(state.isr) != set(state.replicas)
                }
                if lagging:
                    short[topic] = lagging
            if not short:
                return
            time.sleep(0.25)
        raise BrokerError(f"partitions not in sync after {timeout:.0f} s: {short}")

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _serving(port: int, wanted: set[int]) -> str | None:
    """Return None when the broker at ``port`` lists ``wanted`` unfenced, else a reason."""
    try:
        with socket.create_connection((HOST, port), timeout=2.0) as sock:
            sock.settimeout(2.0)
            ids, controller = Wire(sock).broker_ids()
    except (OSError, struct.error) as error:
        return f"{type(error).__name__}: {error}"
    if controller < 0:
        return "no active controller yet"
    missing = wanted - set(ids)
    return f"nodes {sorted(missing)} not among the brokers yet" if missing else None
