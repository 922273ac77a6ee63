"""The service's configuration: one typed place, TOML plus environment overrides.

Every key `[section] key` (or `[sinks.webhook] key`) can be overridden by the
environment variable `EXFIL_<SECTION>__<KEY>` (dots in a section become `_`:
`EXFIL_SINKS_WEBHOOK__URL`). Values are validated once at start; an error names
the key and what was expected. Secrets (SASL password, webhook token) are read
from the environment only, never from the file.
"""

from __future__ import annotations

import os
import tomllib
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from detector.rules import LIMITS_OFF_AT_ZERO

ENV_PREFIX = "EXFIL_"


class ConfigError(ValueError):
    """The configuration file or an environment override is invalid."""


@dataclass
class KafkaConfig:
    bootstrap_servers: str = "127.0.0.1:9092"
    group_id: str = "exfil-detector"
    events_topic: str = "db-access"
    alerts_topic: str = "exfil-alerts"
    dead_letter_topic: str = "db-access-dead-letter"
    client_id: str = "exfil-detector"
    security_protocol: str = "PLAINTEXT"     # PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL
    sasl_mechanism: str = ""                 # PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
    sasl_username: str = ""
    ssl_cafile: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    max_poll_records: int = 5_000
    poll_timeout_ms: int = 500
    create_topics: bool = False
    events_partitions: int = 6
    changelog_topic: str = ""                # default "<group_id>-state-changelog"
    repartition: bool = False                # events keyed by account or unkeyed: re-key by employee first
    repartition_topic: str = ""              # default "<group_id>-events-by-employee"
    reconnect_backoff_max_ms: int = 10_000
    fetch_process: bool = True               # fetch and parse records in a child process (`streams.fetch`)

    @property
    def sasl_password(self) -> str:
        """Only ever from the environment (EXFIL_KAFKA_SASL_PASSWORD)."""
        return os.environ.get("EXFIL_KAFKA_SASL_PASSWORD", "")

    @property
    def state_changelog_topic(self) -> str:
        return self.changelog_topic or f"{self.group_id}-state-changelog"

    @property
    def employee_keyed_topic(self) -> str:
        return self.repartition_topic or f"{self.group_id}-events-by-employee"

    @property
    def scored_topic(self) -> str:
        """The topic the detector scores: the events topic, or its re-keyed copy when repartitioning."""
        return self.employee_keyed_topic if self.repartition else self.events_topic


@dataclass
class ModelConfig:
    path: str = "models/current"
    watch_interval_s: float = 30.0     # 0 disables watching; SIGHUP always reloads


@dataclass
class InputsConfig:
    directory: str = "directory.csv"
    catalog: str = "catalog.yaml"
    calendar: str = "calendar.yaml"


@dataclass
class StateConfig:
    path: str = "state"                      # the local store (SQLite), a cache of the changelog
    changelog: bool = True                   # mirror state to a compacted topic so it follows its partition
    checkpoint_interval_s: float = 1.0       # how often state is saved and offsets committed


@dataclass
class MetricsConfig:
    port: int = 9108
    host: str = "0.0.0.0"


@dataclass
class RulesConfig:
    bulk_read_rows: int = 20000
    bulk_read_critical_rows: int = 200000
    export_enabled: bool = True
    foreign_network_enabled: bool = True
    open_ended_read_enabled: bool = True
    sustained_excess: float = 2.5
    unfamiliar_data: float = 7.0
    unfamiliar_new_columns: float = 3.5
    paging: float = 3.0
    out_of_scope_share: float = 0.5
    off_hours_new_source_rows: int = 200
    outsized_read_times: float = 3.0
    new_query_read_times: float = 3.0
    new_high_value_column_statements: int = 20


@dataclass
class ServiceConfig:
    shutdown_timeout_s: float = 10.0
    log_level: str = "INFO"


@dataclass
class JsonlSinkConfig:
    path: str = ""


@dataclass
class KafkaSinkConfig:
    enabled: bool = True


@dataclass
class WebhookSinkConfig:
    url: str = ""
    timeout_s: float = 5.0
    max_backoff_s: float = 60.0

    @property
    def token(self) -> str:
        """Bearer token, only from the environment (EXFIL_WEBHOOK_TOKEN)."""
        return os.environ.get("EXFIL_WEBHOOK_TOKEN", "")


@dataclass
class AlertmanagerSinkConfig:
    url: str = ""                    # e.g. http://alertmanager:9093
    timeout_s: float = 5.0
    max_backoff_s: float = 60.0
    resolve_after_s: float = 86400.0


@dataclass
class SinksConfig:
    kafka: KafkaSinkConfig = field(default_factory=KafkaSinkConfig)
    jsonl: JsonlSinkConfig = field(default_factory=JsonlSinkConfig)
    webhook: WebhookSinkConfig = field(default_factory=WebhookSinkConfig)
    alertmanager: AlertmanagerSinkConfig = field(default_factory=AlertmanagerSinkConfig)


@dataclass
class Config:
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    inputs: InputsConfig = field(default_factory=InputsConfig)
    state: StateConfig = field(default_factory=StateConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    rules: RulesConfig = field(default_factory=RulesConfig)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    sinks: SinksConfig = field(default_factory=SinksConfig)


_CHOICES = {
    "kafka.security_protocol": {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"},
    "kafka.sasl_mechanism": {"", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"},
    "service.log_level": {"DEBUG", "INFO", "WARNING", "ERROR"},
}


def load_config(path: Path | str | None, environ: dict[str, str] | None = None) -> Config:
    """Read TOML (if given), apply environment overrides, validate."""
    data: dict = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    config = _build(Config, data, "")
    _apply_environment(config, os.environ if environ is None else environ)
    _validate(config)
    return config


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"config section [{prefix.rstrip('.')}] must be a table")
    known = {f.name: f for f in fields(cls)}
    for key in data:
        if key not in known:
            raise ConfigError(f"unknown config key {prefix}{key}")
    values = {}
    for name, spec in known.items():
        if name not in data:
            continue
        hint = typing.get_type_hints(cls)[name]
        if isinstance(hint, type) and hasattr(hint, "__dataclass_fields__"):
            values[name] = _build(hint, data[name], f"{prefix}{name}.")
        else:
            values[name] = _coerce(data[name], hint, f"{prefix}{name}")
    return cls(**values)


def _coerce(value: Any, hint: type, key: str) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif hint is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"config key {key}: expected {hint.__name__}, got {value!r}")


def _apply_environment(config: Config, environ: dict[str, str]) -> None:
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section_name, key = name[len(ENV_PREFIX):].lower().split("__", 1)
        section = _section(config, section_name)
        if section is None or key not in {f.name for f in fields(section)}:
            raise ConfigError(f"environment variable {name} names no config key")
        hint = typing.get_type_hints(type(section))[key]
        setattr(section, key, _coerce(value, hint, f"{section_name.replace('_', '.', 1) if section_name.startswith('sinks_') else section_name}.{key} (from {name})"))


def _section(config: Config, name: str) -> Any:
    if name.startswith("sinks_"):
        return getattr(config.sinks, name[len("sinks_"):], None)
    section = getattr(config, name, None)
    return section if section is not None and hasattr(section, "__dataclass_fields__") and name != "sinks" else None


def _validate(config: Config) -> None:
    for key, allowed in _CHOICES.items():
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        if value not in allowed:
            raise ConfigError(f"config key {key}: {value!r} is not one of {', '.join(sorted(a or '(empty)' for a in allowed))}")
    positive = {"kafka.session_timeout_ms": config.kafka.session_timeout_ms,
                "kafka.max_poll_records": config.kafka.max_poll_records,
                "kafka.events_partitions": config.kafka.events_partitions,
                "rules.bulk_read_rows": config.rules.bulk_read_rows}
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError(f"config key {key}: must be > 0, got {value}")
    for name in LIMITS_OFF_AT_ZERO:
        if getattr(config.rules, name) < 0:
            raise ConfigError(f"config key rules.{name}: must be >= 0 (0 turns it off), got {getattr(config.rules, name)}")
    if config.state.checkpoint_interval_s < 0:
        raise ConfigError(f"config key state.checkpoint_interval_s: must be >= 0, got {config.state.checkpoint_interval_s}")
    if not 0 <= config.metrics.port <= 65535:
        raise ConfigError(f"config key metrics.port: {config.metrics.port} is not a TCP port")
    if config.kafka.sasl_mechanism and not config.kafka.security_protocol.startswith("SASL"):
        raise ConfigError("config key kafka.sasl_mechanism is set but kafka.security_protocol is not SASL_PLAINTEXT or SASL_SSL")
    for key in ("webhook", "alertmanager"):
        url = getattr(config.sinks, key).url
        if url and not url.startswith(("http://", "https://")):
            raise ConfigError(f"config key sinks.{key}.url: {url!r} is not an http(s) URL")


def local_config(bootstrap: str, model: Path, inputs: Path, state: Path, metrics_port: int) -> Config:
    """A configuration for a broker on this machine (the demo, benchmarks): short group timeouts,
    metrics on loopback, the directory, catalog and calendar files of `inputs`."""
    config = Config()
    config.kafka.bootstrap_servers = bootstrap
    config.kafka.session_timeout_ms, config.kafka.heartbeat_interval_ms = 2000, 600
    config.kafka.poll_timeout_ms = 200
    config.model.path = str(model)
    config.inputs.directory = str(inputs / "directory.csv")
    config.inputs.catalog = str(inputs / "catalog.yaml")
    config.inputs.calendar = str(inputs / "calendar.yaml")
    config.state.path = str(state)
    config.metrics.port, config.metrics.host = metrics_port, "127.0.0.1"
    _validate(config)
    return config
