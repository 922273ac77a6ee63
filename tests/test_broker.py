"""The Tansu broker does what the detector relies on: groups, manual commits, headers, restarts."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.consumer.fetcher import ConsumerRecord

from streams.broker import BrokerError, TansuBroker, create_topics



pytestmark = pytest.mark.kafka

N = 1000
TOPIC = "access-events"
GROUP = "detector"
ROOT = Path(__file__).resolve().parents[1]


def produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    futures = [producer.send(topic, key=key, value=value) for key, value in messages]
    producer.flush()
    for future in futures:
        future.get(timeout=10)  # raises if any send failed
    producer.close()


def keyed(start: int, stop: int) -> list[tuple[bytes, bytes]]:
    return [(f"user-{i % 37}".encode(), f"event-{i}".encode().ljust(330, b".")) for i in range(start, stop)]


def group_consumer(bootstrap: str, settings: dict[str, Any]) -> KafkaConsumer:
    return KafkaConsumer(TOPIC, bootstrap_servers=bootstrap, group_id=GROUP, **settings)


def drain(consumer: KafkaConsumer, expected: int, timeout: float = 30.0) -> list[ConsumerRecord]:
    """Poll until `expected` records arrived (or the timeout), then return them all."""
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + timeout
    while len(records) < expected and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=200).values():
            records.extend(batch)
    return records


def poll_for(consumer: KafkaConsumer, seconds: float) -> list[ConsumerRecord]:
    """Everything the consumer receives during `seconds`."""
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=100).values():
            records.extend(batch)
    return records


def wait_assigned(consumer: KafkaConsumer, timeout: float = 15.0) -> set[TopicPartition]:
    deadline = time.monotonic() + timeout
    records = []
    while not consumer.assignment() and time.monotonic() < deadline:
        records.extend(r for batch in consumer.poll(timeout_ms=100).values() for r in batch)
    assert consumer.assignment(), "consumer never joined the group"
    assert records == [], "received records while joining"
    return consumer.assignment()


def read_all(bootstrap: str, topic: str, partitions: int, expected: int) -> list[ConsumerRecord]:
    """Every record of the topic, read without a group."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", fetch_max_wait_ms=100)
    consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
    records = drain(consumer, expected)
    records += poll_for(consumer, 0.5)  # nothing beyond what was expected
    consumer.close()
    return records


def committed_offsets(bootstrap: str, partitions: int) -> dict[int, int | None]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=GROUP, enable_auto_commit=False)
    offsets = {p: consumer.committed(TopicPartition(TOPIC, p)) for p in range(partitions)}
    consumer.close()
    return offsets


def values(records: list[ConsumerRecord]) -> list[bytes]:
    return sorted(r.value for r in records)


def test_group_reads_everything_once_and_a_later_member_resumes_from_the_commit(tansu, kafka_consumer_settings):
    bootstrap = tansu.bootstrap_servers
    create_topics(bootstrap, {TOPIC: 3})
    produce(bootstrap, TOPIC, keyed(0, N))

    first = group_consumer(bootstrap, kafka_consumer_settings)
    records = drain(first, N)
    records += poll_for(first, 0.5)
    first.commit()
    first.close()
    assert len(records) == N
    assert values(records) == sorted(v for _, v in keyed(0, N))
    assert {r.partition for r in records} == {0, 1, 2}
    partition_of_key: dict[bytes, set[int]] = {}
    for r in records:
        partition_of_key.setdefault(r.key, set()).add(r.partition)
    assert all(len(p) == 1 for p in partition_of_key.values()), "a key was spread over partitions"

    second = group_consumer(bootstrap, kafka_consumer_settings)
    assert len(wait_assigned(second)) == 3
    assert poll_for(second, 1.5) == []
    produce(bootstrap, TOPIC, keyed(N, N + 10))
    fresh = drain(second, 10) + poll_for(second, 0.5)
    second.close()
    assert values(fresh) == sorted(v for _, v in keyed(N, N + 10))


@pytest.mark.parametrize("kill", [True, False], ids=["sigkill", "sigterm"])
def test_s3_broker_keeps_records_and_committed_offsets_across_a_restart(tansu_s3, kafka_consumer_settings, kill):
    bootstrap = tansu_s3.bootstrap_servers
    create_topics(bootstrap, {TOPIC: 3})
    produce(bootstrap, TOPIC, keyed(0, 300))
    consumer = group_consumer(bootstrap, kafka_consumer_settings)
    assert len(drain(consumer, 300)) == 300
    consumer.commit()
    consumer.close()
    before = committed_offsets(bootstrap, 3)
    assert all(offset for offset in before.values()), before
    produce(bootstrap, TOPIC, keyed(300, 350))  # written but not yet consumed

    port, pid = tansu_s3.port, tansu_s3.pid
    tansu_s3.restart(kill=kill)
    assert (tansu_s3.port, tansu_s3.bootstrap_servers) == (port, bootstrap) and tansu_s3.pid != pid

    assert len(read_all(bootstrap, TOPIC, 3, 350)) == 350
    assert committed_offsets(bootstrap, 3) == before
    resumed = group_consumer(bootstrap, kafka_consumer_settings)
    pending = drain(resumed, 50) + poll_for(resumed, 0.5)
    resumed.close()
    assert values(pending) == sorted(v for _, v in keyed(300, 350))


def test_headers_round_trip(tansu):
    bootstrap = tansu.bootstrap_servers
    create_topics(bootstrap, {"dead-letter": 1})
    headers = [
        ("reason", b"invalid json: expected ',' at line 1 column 42"),
        ("reason", b"second value, same key"),
        ("source.topic", b"access-events"),
        ("source.offset", b"12345"),
        ("empty", b""),
        ("unicod\u00e9", "na\u00efve \u2713".encode()),
        ("big", b"x" * 20_000),
    ]
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    producer.send("dead-letter", key=None, value=b"{not json", headers=headers).get(timeout=10)
    producer.send("dead-letter", key=b"k", value=None, headers=[]).get(timeout=10)
    producer.close()

    first, second = read_all(bootstrap, "dead-letter", 1, 2)
    assert (first.key, first.value, first.headers) == (None, b"{not json", headers)
    assert (second.key, second.value, second.headers) == (b"k", None, [])


def test_create_topics_is_idempotent_and_rejects_other_partition_counts(tansu):
    bootstrap = tansu.bootstrap_servers
    create_topics(bootstrap, {"a": 3, "compacted": 1}, config={"compacted": {"cleanup.policy": "compact"}})
    create_topics(bootstrap, {"a": 3, "b": 2})
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    counts = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(["a", "b", "compacted"])}
    configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "compacted")], config_filter="all")
    admin.close()
    assert counts == {"a": 3, "b": 2, "compacted": 1}
    assert configs["topic"]["compacted"]["cleanup.policy"]["value"] == "compact"
    with pytest.raises(BrokerError, match="other partition counts"):
        create_topics(bootstrap, {"a": 5})


def test_restart_keeps_the_port_and_memory_storage_starts_empty(tansu):
    create_topics(tansu.bootstrap_servers, {"gone": 1})
    port, pid = tansu.port, tansu.pid
    tansu.restart()
    assert tansu.port == port and tansu.pid != pid
    admin = KafkaAdminClient(bootstrap_servers=tansu.bootstrap_servers)
    assert "gone" not in admin.list_topics()
    admin.close()
    tansu.stop()
    assert not tansu.running
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_start_failure_names_the_problem_and_shows_the_log(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        broker = TansuBroker(port=squatter.getsockname()[1], log_path=tmp_path / "t.log", start_timeout=10)
        with pytest.raises(BrokerError, match="(?s)address in use.*AddrInUse"):
            broker.start()
    assert not broker.running


CHILD = """
import sys, time
from pathlib import Path
from streams.broker import TansuBroker
broker = TansuBroker(log_path=Path(sys.argv[2])).start()
print(broker.pid, flush=True)
if sys.argv[1] == "exit":
    sys.exit(0)  # no stop(): atexit must clean up
time.sleep(60)  # killed by the test: PR_SET_PDEATHSIG must clean up
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and /proc are Linux-only")
@pytest.mark.parametrize("how", ["exit", "sigkill"])
def test_broker_never_outlives_its_parent(how, tmp_path):
    argv = [sys.executable, "-c", CHILD, how, str(tmp_path / "tansu.log")]
    child = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    broker_pid = int(child.stdout.readline())
    if how == "sigkill":
        child.send_signal(signal.SIGKILL)
    child.wait(timeout=20)
    child.stdout.close()
    deadline = time.monotonic() + 10
    while alive(broker_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(broker_pid)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")
