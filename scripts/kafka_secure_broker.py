"""A local Kafka broker with secured listeners (SASL_SSL with SCRAM, and mutual TLS).

:class:`SecureBroker` is the single-node :class:`kafka_broker.Broker` with two more client
listeners on 127.0.0.1:

- ``SASL_SSL`` (``sasl_ssl_port``): TLS, then SCRAM-SHA-512 or SCRAM-SHA-256; the user
  and password (for both) are created when the KRaft storage is formatted
  (``kafka-storage format --add-scram``).
- ``SSL`` (``ssl_port``): TLS with a client certificate required (mutual TLS).

The ``PLAINTEXT`` listener on ``port`` stays, as a cluster's internal listener does: the
broker talks to itself there and the readiness probe uses it. Certificates come from
:func:`make_certificates` (``openssl``): a CA, the broker's certificate for ``127.0.0.1``
and ``localhost``, and a client certificate for the TLS listener, all PEM, which Kafka 4
reads as they are (``ssl.keystore.type=PEM``). Only the standard library is used::

    certs = make_certificates(home / "certs")
    broker = SecureBroker(home, certs, "alice", "her-password", port=..., ...)
    broker.start()
    broker.sasl_ssl_bootstrap, broker.ssl_bootstrap
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kafka_broker import HOST, STORAGE_TOOL_CLASS, Broker, BrokerError, new_cluster_id

__all__ = ["SCRAM_MECHANISMS", "Certificates", "SecureBroker", "make_certificates"]

logger = logging.getLogger("marketpulse.kafka_secure_broker")

SCRAM_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")
SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
_DAYS = "2"  # test certificates: short-lived
_CURVE = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1")  # fast to generate


@dataclass(frozen=True)
class Certificates:
    """PEM files of a test CA and the certificates it signed.

    Attributes:
        ca: The CA's certificate (the trust anchor of broker and clients).
        broker_keystore: The broker's private key followed by its certificate and the CA's.
        client_certificate: The client's certificate (for the mutual-TLS listener).
        client_key: The client's private key (unencrypted).
        other_ca: A CA that signed nothing here (a wrong trust anchor).
    """

    ca: Path
    broker_keystore: Path
    client_certificate: Path
    client_key: Path
    other_ca: Path


def _openssl(*args: str) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise BrokerError("openssl is needed to make the test certificates; none found")
    result = subprocess.run([openssl, *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BrokerError(f"openssl {args[0]} failed: {result.stderr.strip()[-2000:]}")


def _new_ca(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    _openssl(
        "req", "-x509", *_CURVE, "-nodes", "-days", _DAYS, "-subj", f"/CN=MarketPulse {name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout", str(key), "-out", str(cert),
    )  # fmt: skip
    return cert, key


def _signed(
    directory: Path, name: str, ca: tuple[Path, Path], extensions: str
) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    csr, ext = directory / f"{name}.csr", directory / f"{name}.ext"
    ext.write_text(extensions, encoding="utf-8")
    _openssl(
        "req", "-new", *_CURVE, "-nodes", "-subj", f"/CN={name}",
        "-keyout", str(key), "-out", str(csr),
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
        "-CAcreateserial", "-days", _DAYS, "-extfile", str(ext), "-out", str(cert),
    )  # fmt: skip
    return cert, key


def make_certificates(directory: Path | str) -> Certificates:
    """Make a CA, a broker certificate (SAN 127.0.0.1 and localhost) and a client one.

    Args:
        directory: Where the PEM files are written (created when missing).

    Returns:
        The files made.

    Raises:
        BrokerError: ``openssl`` is missing or failed.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ca = _new_ca(directory, "ca")
    other_ca, _ = _new_ca(directory, "other-ca")
    broker_cert, broker_key = _signed(
        directory, "localhost", ca,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth,clientAuth\n",
    )  # fmt: skip
    client_cert, client_key = _signed(
        directory, "marketpulse-client", ca,
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
    )  # fmt: skip
    keystore = directory / "broker-keystore.pem"
    keystore.write_text(
        "".join(p.read_text(encoding="ascii") for p in (broker_key, broker_cert, ca[0])),
        encoding="ascii",
    )
    return Certificates(ca[0], keystore, client_cert, client_key, other_ca)


class SecureBroker(Broker):
    """A single-node broker with a SASL_SSL (SCRAM) and an SSL (mutual TLS) listener.

    Args:
        home: As :class:`kafka_broker.Broker`.
        certificates: From :func:`make_certificates`.
        username: The SCRAM user created when the storage is formatted (both mechanisms).
        password: That user's password.
        sasl_ssl_port: Port of the SASL_SSL listener on 127.0.0.1.
        ssl_port: Port of the SSL listener on 127.0.0.1.
        **options: Passed to :class:`kafka_broker.Broker` (``port``, ``controller_port``, ...).
    """

    def __init__(
        self,
        home: Path | str,
        certificates: Certificates,
        username: str,
        password: str,
        *,
        sasl_ssl_port: int,
        ssl_port: int,
        **options: object,
    ) -> None:
        super().__init__(home, **options)
        self.certificates = certificates
        self.username = username
        self.password = password
        self.sasl_ssl_port = int(sasl_ssl_port)
        self.ssl_port = int(ssl_port)

    def __repr__(self) -> str:
        return (
            f"SecureBroker(home={str(self.home)!r}, port={self.port}, "
            f"sasl_ssl_port={self.sasl_ssl_port}, ssl_port={self.ssl_port})"
        )

    @property
    def sasl_ssl_bootstrap(self) -> str:
        """The ``bootstrap.servers`` of the SASL_SSL listener."""
        return f"{HOST}:{self.sasl_ssl_port}"

    @property
    def ssl_bootstrap(self) -> str:
        """The ``bootstrap.servers`` of the mutual-TLS listener."""
        return f"{HOST}:{self.ssl_port}"

    def server_properties(self) -> dict[str, str]:
        """Return the base settings with the two secured listeners added."""
        settings = super().server_properties()
        secured = {"SASL_SSL": self.sasl_ssl_port, "SSL": self.ssl_port}
        for key in ("listeners", "advertised.listeners"):
            settings[key] += "".join(f",{name}://{HOST}:{port}" for name, port in secured.items())
        settings["listener.security.protocol.map"] += ",SASL_SSL:SASL_SSL,SSL:SSL"
        settings.update(
            {
                "sasl.enabled.mechanisms": ",".join(SCRAM_MECHANISMS),
                **{
                    f"listener.name.sasl_ssl.{mechanism.lower()}.sasl.jaas.config": SCRAM_LOGIN
                    for mechanism in SCRAM_MECHANISMS
                },
                "ssl.keystore.type": "PEM",
                "ssl.keystore.location": str(self.certificates.broker_keystore),
                "ssl.truststore.type": "PEM",
                "ssl.truststore.location": str(self.certificates.ca),
                "listener.name.ssl.ssl.client.auth": "required",
            }
        )
        return settings

    def format_storage(self) -> None:
        """Format the KRaft storage once, creating the SCRAM user with it."""
        if self.formatted():
            return
        # a cluster id given to the base class (its nodes share one), else a new one
        cluster_id = getattr(self, "cluster_id", None) or new_cluster_id()
        logger.info(
            "formatting KRaft storage in %s with SCRAM user %s", self.data_dir, self.username
        )
        scram = [
            argument
            for mechanism in SCRAM_MECHANISMS
            for argument in (
                "--add-scram",
                f"{mechanism}=[name={self.username},password={self.password}]",
            )
        ]
        command = self._java(
            STORAGE_TOOL_CLASS, "format", "--cluster-id", cluster_id,
            "--config", str(self.config_file), "--ignore-formatted", *scram,
        )  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not self.formatted():
            output = (result.stdout + result.stderr).replace(self.password, "********")
            raise BrokerError(
                f"formatting the KRaft storage failed (exit {result.returncode}):\n"
                f"{output.strip()[-3000:]}"
            )
