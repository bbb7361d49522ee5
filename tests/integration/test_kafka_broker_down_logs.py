"""A broker that stays away fills no terminal: repeated client errors are rate-limited.

librdkafka reports every failed connect of every client (several a second
each); before the rate limiting, 40 s without the broker gave a `process`
service over 3,000 lines of stderr. Ctrl-C then stops the services with 130.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from .kafka_tools import create_topics

pytestmark = pytest.mark.integration

DOWN_FOR = 40.0  # seconds the services run without their broker
MAX_LINES = 40  # stderr lines a service may write meanwhile (and while it stops)


class Service:
    def __init__(self, *args):
        env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "marketpulse", *map(str, args)],
            env=env, text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        self.err: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.process.stderr:
            self.err.append(line)

    def stop(self, timeout=60):
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout)
        return self.process.returncode


def _members(bootstrap, group):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        found = admin.describe_consumer_groups([group])[group].result(timeout=10)
    except (KafkaException, TimeoutError):  # the coordinator is still loading, or slow
        return 0  # under load: the caller asks again until its own deadline
    return len(found.members)


def _refused(port):
    with socket.socket() as sock:
        try:
            sock.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            return True
    return False


def test_services_without_their_broker_write_a_bounded_number_of_lines(
    private_broker, topic_prefix, tmp_path
):
    bootstrap = private_broker.bootstrap
    create_topics(bootstrap, topic_prefix)
    common = ["--bootstrap-servers", bootstrap, "--topic-prefix", topic_prefix]
    services = {
        "process": Service("process", *common, "--group", f"{topic_prefix}process"),
        "sink": Service(
            "sink", "lake", *common, "--group", f"{topic_prefix}sink", "--lake", tmp_path / "lake"
        ),  # fmt: skip
    }
    try:
        deadline = time.monotonic() + 120
        for name, group in (("process", "process"), ("sink", "sink")):
            while _members(bootstrap, f"{topic_prefix}{group}") == 0:
                assert services[name].process.poll() is None, "".join(services[name].err)
                assert time.monotonic() < deadline, f"{name} never joined its group"
                time.sleep(0.2)
        before = {name: len(s.err) for name, s in services.items()}
        private_broker.stop()
        assert _refused(private_broker.port)  # the fault: every connect is refused
        down_until = time.monotonic() + DOWN_FOR
        while time.monotonic() < down_until:  # the services wait for their broker
            for name, service in services.items():
                assert service.process.poll() is None, (name, "".join(service.err[-20:]))
            time.sleep(0.5)
        codes = {name: service.stop() for name, service in services.items()}
    finally:
        for service in services.values():
            if service.process.poll() is None:
                service.process.kill()
    for name, service in services.items():
        written = len(service.err) - before[name]
        assert written <= MAX_LINES, (name, written, "".join(service.err[-30:]))
        assert "Traceback" not in "".join(service.err), name
    assert codes == {"process": 130, "sink": 130}
