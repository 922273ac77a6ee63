"""`exfil-detector`: the command line (contract section 7).

Every command ends with status 0, or with a non-zero status and one line naming
the problem (a missing file, a bad flag, a malformed input), never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from detector.inputs import InputError

EXIT_USAGE = 2
EXIT_FAILURE = 1


class CommandError(Exception):
    """A problem the user can fix, reported as one line."""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (CommandError, InputError, FileNotFoundError, IsADirectoryError, PermissionError, ValueError) as exc:
        print(f"exfil-detector {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"exfil-detector {args.command}: interrupted", file=sys.stderr)
        return 130


class _OneLineParser(argparse.ArgumentParser):
    """A bad flag ends with one line naming it (and status 2), not a usage dump."""

    def error(self, message: str) -> None:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="exfil-detector", description="Detect insider data exfiltration from database access events.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_OneLineParser)
    for name, (setup, handler, summary) in _COMMANDS.items():
        sub = commands.add_parser(name, help=summary, description=summary)
        setup(sub)
        sub.set_defaults(handler=handler)
    return parser


# -- simulate ---------------------------------------------------------------

def _setup_simulate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True, help="directory to write the workload to")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--employees", type=_positive_int, default=200)
    p.add_argument("--days", type=_positive_int, default=28)


def _simulate(args: argparse.Namespace) -> int:
    from detector.simulate import SimulationConfig, simulate, write_workload

    started = time.perf_counter()
    workload = simulate(SimulationConfig(seed=args.seed, employees=args.employees, days=args.days))
    write_workload(workload, args.out)
    print(f"wrote {len(workload.train_events):,} training and {len(workload.test_events):,} test events, "
          f"{len(workload.labels)} labelled incidents to {args.out} in {time.perf_counter() - started:.1f}s")
    return 0


# -- train ------------------------------------------------------------------

def _add_inputs(p: argparse.ArgumentParser, calendar: bool = True) -> None:
    p.add_argument("--events", type=Path, required=True, help="JSONL access events")
    p.add_argument("--directory", type=Path, required=True, help="employee directory CSV")
    p.add_argument("--catalog", type=Path, required=True, help="sensitivity catalog YAML")
    if calendar:
        p.add_argument("--calendar", type=Path, required=True, help="working calendar YAML")
    p.add_argument("--dead-letter", type=Path, help="JSONL file for rejected events")


def _setup_train(p: argparse.ArgumentParser) -> None:
    _add_inputs(p)
    p.add_argument("--out", type=Path, required=True, help="model directory to write (e.g. models/current)")
    p.add_argument("--alert-budget", type=float, default=1.0, help="model alerts allowed per 1,000 employee-days on the baseline")
    p.add_argument("--seed", type=int, default=0, help="random state of the isolation forest")
    p.add_argument("--trees", type=_positive_int, default=200)


def _train(args: argparse.Namespace) -> int:
    from detector.artifacts import save_bundle
    from detector.model import ForestSettings
    from detector.rules import RuleSettings
    from detector.training import train

    refs = _load_refs(args)
    forest = ForestSettings(n_estimators=args.trees, random_state=args.seed, alert_budget_per_1000_days=args.alert_budget)
    dead_letter = _dead_letter(args)
    started = time.perf_counter()
    passes = iter([dead_letter, _dead_letter(argparse.Namespace())])  # rejections reported once, not per pass
    result = train(lambda: _batches(args.events, next(passes)), refs, forest, RuleSettings())
    dead_letter.close()
    settings = {"alert_budget_per_1000_days": forest.alert_budget_per_1000_days, "n_estimators": forest.n_estimators,
                "max_samples": forest.max_samples, "random_state": forest.random_state,
                "budget_safety": forest.budget_safety, "envelope_quantile": forest.envelope_quantile,
                "extrapolation_weight": forest.extrapolation_weight}
    bundle = save_bundle(args.out, result.anomaly, result.scoring.peers, result.states, result.summary, settings)
    s = result.summary
    print(f"trained {bundle.scoring.version} on {s['events']:,} events, {s['employee_days']:,} employee-days "
          f"({s['period_start']} to {s['period_end']}) in {time.perf_counter() - started:.1f}s; "
          f"threshold {result.anomaly.threshold:.4f}; rejected {dead_letter.count:,} events; model in {args.out}")
    for gap in (s.get("calendar") or {}).get("gaps", []):
        print(f"note: the baseline has {gap}", file=sys.stderr)
    return 0


# -- replay -----------------------------------------------------------------

def _setup_replay(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, required=True, help="model directory written by `train`")
    _add_inputs(p)
    p.add_argument("--alerts-out", type=Path, required=True, help="JSONL file to write alerts to (replaced)")
    p.add_argument("--batch-size", type=_positive_int, default=10_000)


def _replay(args: argparse.Namespace) -> int:
    from detector.artifacts import load_bundle
    from detector.pipeline import DetectionPipeline, settle_heap
    from streams.files import JsonlWriter

    refs = _load_refs(args)
    bundle = load_bundle(args.model)
    pipeline = DetectionPipeline(refs, bundle.scoring)
    pipeline.restore(bundle.states)
    settle_heap()
    dead_letter = _dead_letter(args)
    args.alerts_out.unlink(missing_ok=True)
    writer = JsonlWriter(args.alerts_out)
    started = time.perf_counter()
    for batch in _batches(args.events, dead_letter, args.batch_size):
        writer.write(pipeline.process(batch))
    writer.write(pipeline.finish())
    writer.close()
    dead_letter.close()
    elapsed = time.perf_counter() - started
    stats = pipeline.stats
    detectors = ", ".join(f"{k} {v}" for k, v in sorted(stats.alerts.items())) or "none"
    print(f"replayed {stats.events:,} events in {elapsed:.1f}s ({stats.events / max(elapsed, 1e-9):,.0f} events/s); "
          f"rejected {dead_letter.count:,}; unresolved accounts {len(stats.unresolved_accounts)}; "
          f"alerts: {detectors}; written to {args.alerts_out}")
    return 0


# -- evaluate ---------------------------------------------------------------

def _setup_evaluate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--labels", type=Path, required=True)
    p.add_argument("--alerts", type=Path, required=True)
    p.add_argument("--events", type=Path, required=True, help="the events the alerts were raised on")
    p.add_argument("--directory", type=Path, required=True)
    p.add_argument("--catalog", type=Path, help="default: catalog.yaml beside the directory")
    p.add_argument("--calendar", type=Path, help="default: calendar.yaml beside the directory")
    p.add_argument("--train-events", type=Path, help="baseline period for the daily-forest baseline; default: train.jsonl beside the events")
    p.add_argument("--json-out", type=Path, help="also write the figures as JSON")


def _evaluate(args: argparse.Namespace) -> int:
    from detector.comparison import count_days, daily_forest_detections, static_rule_detections
    from detector.evaluation import detections_from_alerts, evaluate, format_table, incidents_from_labels
    from detector.model import ForestSettings
    from streams.files import DeadLetterFile, read_jsonl

    args.catalog = args.catalog or args.directory.with_name("catalog.yaml")
    args.calendar = args.calendar or args.directory.with_name("calendar.yaml")
    train_events = args.train_events or args.events.with_name("train.jsonl")
    refs = _load_refs(args)
    incidents = incidents_from_labels(read_jsonl(args.labels))
    ignore = DeadLetterFile(None)
    test_days = count_days(_batches(args.events, ignore), refs)
    employee_days = len(test_days.counts)
    results = [evaluate("exfil-detector", incidents, detections_from_alerts(read_jsonl(args.alerts)), employee_days, refs.calendar),
               evaluate("static volume rules", incidents, static_rule_detections(test_days), employee_days, refs.calendar)]
    if train_events.is_file():
        train_days = count_days(_batches(train_events, ignore), refs)
        forest = daily_forest_detections(train_days, test_days, ForestSettings())
        results.append(evaluate("daily isolation forest", incidents, forest, employee_days, refs.calendar))
    else:
        print(f"note: no training events at {train_events}; daily isolation forest baseline skipped", file=sys.stderr)
    print(format_table(results))
    if args.json_out:
        args.json_out.write_bytes(orjson.dumps([r.to_dict() for r in results], option=orjson.OPT_INDENT_2))
    return 0


# -- run --------------------------------------------------------------------

def _setup_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, required=True, help="TOML configuration (see deploy/detector.toml)")


def _run(args: argparse.Namespace) -> int:
    from streams.config import ConfigError, load_config
    from streams.service import DetectorService

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        raise CommandError(str(exc)) from None
    configure_logging(config.service.log_level)
    service = DetectorService(config)
    service.install_signal_handlers()
    return service.run()


def _setup_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--duration", type=float, help="stop by itself after this many seconds (exit 0)")
    p.add_argument("--metrics-port", type=int, default=9108)
    p.add_argument("--employees", type=_positive_int, default=40)
    p.add_argument("--speed", type=float, default=3600.0, help="simulated seconds per real second")


def _demo(args: argparse.Namespace) -> int:
    import logging

    from streams.demo import DemoSettings, run_demo

    configure_logging("WARNING")
    # the demo stops its own broker: kafka-python's connection errors while it goes are expected noise
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    return run_demo(DemoSettings(duration_s=args.duration, metrics_port=args.metrics_port,
                                 employees=args.employees, speed=args.speed))


# -- ship -------------------------------------------------------------------

def _setup_ship(p: argparse.ArgumentParser) -> None:
    from streams.sources import FORMATS

    p.add_argument("--format", required=True, choices=FORMATS, metavar="FORMAT", help=", ".join(FORMATS))
    p.add_argument("--path", required=True, help="the audit log to follow, or - for standard input")
    p.add_argument("--slow-log", type=Path, help="mariadb-audit: the slow query log (long_query_time=0), for rows")
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("--output", type=Path, help="JSONL file to append events to")
    out.add_argument("--bootstrap-servers", metavar="HOST:PORT", help="Kafka brokers to produce events to")
    p.add_argument("--topic", help="events topic (with --bootstrap-servers)")
    p.add_argument("--follow", action="store_true", help="keep following the file (rotation, truncation) until stopped")
    p.add_argument("--position", type=Path, help="position file (default: beside --output, else ./exfil-ship-NAME.position.json)")
    p.add_argument("--dead-letter", type=Path, help="JSONL file for bad records (default: beside the position file)")
    p.add_argument("--log-line-prefix", default="%m [%p] ", help="pgaudit-stderr: the server's log_line_prefix")
    p.add_argument("--identity-pattern", help="regex with (?P<employee>...) matched on application_name / SET statements")
    p.add_argument("--log-timezone", default="UTC", help="IANA zone of timestamps written without an offset")
    p.add_argument("--join-window", type=_positive_float, default=5.0, help="mariadb-audit: seconds to wait for the slow log")
    p.add_argument("--idle-flush", type=_positive_float, default=2.0, help="--follow: emit pending records after this idle time")
    p.add_argument("--no-logins", action="store_true", help="do not emit LOGIN events for successful connections")
    p.add_argument("--no-inline-parameters", action="store_true", help="pgaudit: keep $n placeholders as logged")
    _add_kafka_security(p)


def _add_kafka_security(p: argparse.ArgumentParser) -> None:
    """TLS and SASL for producers outside the service (the password only from the environment)."""
    p.add_argument("--security-protocol", default="PLAINTEXT", choices=("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"))
    p.add_argument("--ssl-cafile", default="")
    p.add_argument("--ssl-certfile", default="")
    p.add_argument("--ssl-keyfile", default="")
    p.add_argument("--sasl-mechanism", default="", help="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; password from EXFIL_KAFKA_SASL_PASSWORD")
    p.add_argument("--sasl-username", default="")


def _ship(args: argparse.Namespace) -> int:
    import signal
    import threading

    from streams.config import KafkaConfig
    from streams.ship import ShipError, ShipOptions, Shipper
    from streams.sources import SourceSettings

    if args.bootstrap_servers and not args.topic:
        raise CommandError("--bootstrap-servers needs --topic")
    if args.topic and not args.bootstrap_servers:
        raise CommandError("--topic needs --bootstrap-servers")
    if args.path != "-" and Path(args.path).is_dir():
        raise CommandError(f"--path {args.path}: is a directory, not a log file")
    kafka = None
    if args.bootstrap_servers:
        kafka = KafkaConfig(bootstrap_servers=args.bootstrap_servers, client_id="exfil-detector-ship",
                            security_protocol=args.security_protocol, sasl_mechanism=args.sasl_mechanism,
                            sasl_username=args.sasl_username, ssl_cafile=args.ssl_cafile,
                            ssl_certfile=args.ssl_certfile, ssl_keyfile=args.ssl_keyfile)
    source = SourceSettings(log_line_prefix=args.log_line_prefix, identity_pattern=args.identity_pattern,
                            log_timezone=args.log_timezone, join_window_s=args.join_window,
                            inline_parameters=not args.no_inline_parameters, logins=not args.no_logins)
    options = ShipOptions(format=args.format, path=args.path, output=args.output, kafka=kafka, topic=args.topic,
                          slow_log=args.slow_log, position=args.position, dead_letter=args.dead_letter,
                          follow=args.follow, source=source, idle_flush_s=args.idle_flush)
    stop = threading.Event()
    try:
        shipper = Shipper(options, stop)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        started = time.perf_counter()
        report = shipper.run()
    except ShipError as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        if isinstance(exc, (FileNotFoundError, IsADirectoryError, PermissionError)):
            raise
        raise CommandError(f"{exc.filename or 'input/output'}: {exc.strerror or exc}") from None
    where = args.output or f"topic {args.topic}"
    dead = f"; {report.bad:,} bad records to {shipper.dead.path}" if report.bad else ""
    print(f"shipped {report.events:,} events from {args.path} to {where} in {time.perf_counter() - started:.1f}s{dead}")
    return 0


# -- poll-row-counts ------------------------------------------------------------

def _setup_poll_row_counts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dsn", required=True, metavar="CONNINFO",
                   help="libpq connection string or URI of the database holding the pg_stat_statements extension; "
                        "no password in it: PGPASSWORD or ~/.pgpass")
    p.add_argument("--interval", type=_positive_float, default=10.0, help="seconds between polls (default 10)")
    p.add_argument("--once", action="store_true",
                   help="poll once against the saved baseline and exit (the first run only records the baseline)")
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("--output", type=Path, help="JSONL file to append events to")
    out.add_argument("--bootstrap-servers", metavar="HOST:PORT", help="Kafka brokers to produce events to")
    p.add_argument("--topic", help="events topic (with --bootstrap-servers)")
    p.add_argument("--state", type=Path,
                   help="baseline file (default: beside --output, else ./exfil-poll-row-counts.state.json)")
    p.add_argument("--psql", default="psql", help="the psql client to run (default: psql on PATH)")
    _add_kafka_security(p)


def _poll_row_counts(args: argparse.Namespace) -> int:
    """Poll pg_stat_statements; emit the rows of COPY ... TO / cursor reads that pgaudit logs as 0.

    Each poll: snapshot, events against the baseline, events durable (fsynced or acknowledged),
    then the new baseline saved (temp file, fsync, rename) with the output's durable size. A
    failed poll or delivery keeps the old baseline, so its rows are counted at the next poll.
    """
    import os
    import signal
    import threading

    from streams.config import KafkaConfig
    from streams.ship import JsonlOutput, KafkaOutput, save_position
    from streams.sources.pg_stat_statements import (Baseline, RowCountTracker, SnapshotError, dsn_has_password,
                                                    read_snapshot)

    if args.bootstrap_servers and not args.topic:
        raise CommandError("--bootstrap-servers needs --topic")
    if args.topic and not args.bootstrap_servers:
        raise CommandError("--topic needs --bootstrap-servers")
    if dsn_has_password(args.dsn):
        raise CommandError("--dsn must not carry a password (it would show in the process list): "
                           "set PGPASSWORD or use ~/.pgpass")
    if args.output is not None and args.output.is_dir():
        raise CommandError(f"--output {args.output}: is a directory, not a file")
    state_path = args.state or (args.output.with_name(args.output.name + ".poll-state.json") if args.output
                                else Path("exfil-poll-row-counts.state.json"))
    baseline, output_bytes = None, None
    if state_path.exists():
        try:
            saved = orjson.loads(state_path.read_bytes())
            baseline = Baseline.from_dict(saved)
        except (OSError, orjson.JSONDecodeError, ValueError) as exc:
            raise CommandError(f"state file {state_path} cannot be read ({_one_line(exc)}); "
                               f"move it away to start over") from None
        same_output = args.output is not None and saved.get("output") == os.path.abspath(args.output)
        output_bytes = saved.get("output_bytes") if same_output and type(saved.get("output_bytes")) is int else None
    tracker = RowCountTracker(baseline)

    def warn(text: str) -> None:
        print(f"exfil-detector poll-row-counts: {text}", file=sys.stderr, flush=True)

    try:
        if args.output is not None:
            output = JsonlOutput(args.output, output_bytes)
        else:
            kafka = KafkaConfig(bootstrap_servers=args.bootstrap_servers, client_id="exfil-detector-poll-row-counts",
                                security_protocol=args.security_protocol, sasl_mechanism=args.sasl_mechanism,
                                sasl_username=args.sasl_username, ssl_cafile=args.ssl_cafile,
                                ssl_certfile=args.ssl_certfile, ssl_keyfile=args.ssl_keyfile)
            output = KafkaOutput(kafka, args.topic)
    except OSError as exc:
        if isinstance(exc, (FileNotFoundError, IsADirectoryError, PermissionError)):
            raise
        raise CommandError(f"{exc.filename or 'output'}: {exc.strerror or exc}") from None
    except Exception as exc:  # the Kafka client cannot reach the brokers
        raise CommandError(f"cannot connect to Kafka: {_one_line(exc)}") from None

    stop = threading.Event()
    if not args.once:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    polls = events = rows = 0
    baseline_only = tracker.baseline is None
    warned_privilege = False
    started = time.perf_counter()
    try:
        while not stop.is_set():
            try:
                snapshot = read_snapshot(args.dsn, args.psql, timeout=max(30.0, 3 * args.interval))
            except SnapshotError as exc:
                if args.once:
                    raise CommandError(str(exc)) from None
                warn(f"{exc}; retrying in {args.interval:g}s")
                stop.wait(args.interval)
                continue
            if not snapshot.privileged and not warned_privilege:
                warned_privilege = True
                warn("the polling role sees only its own statements: GRANT pg_read_all_stats TO it")
            observation = tracker.diff(snapshot)
            try:
                output.deliver(observation.events)
            except Exception as exc:  # broker down, disk full: keep the old baseline, count them next time
                if args.once:
                    raise CommandError(f"cannot deliver events: {_one_line(exc)}") from None
                warn(f"delivery failed ({_one_line(exc)}); retrying in {args.interval:g}s")
                stop.wait(args.interval)
                continue
            tracker.accept(observation.baseline)
            state = observation.baseline.to_dict()
            if isinstance(output, JsonlOutput):
                state.update(output=os.path.abspath(args.output), output_bytes=output.size)
            save_position(state_path, state)
            for note in observation.notes:
                if not note.startswith("first snapshot"):
                    warn(note)
            polls += 1
            events += len(observation.events)
            rows += sum(e["rows"] for e in observation.events)
            if args.once:
                break
            stop.wait(args.interval)
    finally:
        try:
            output.close()
        except Exception:  # closing after a failure must not hide it
            pass
    where = args.output or f"topic {args.topic}"
    if args.once and baseline_only:
        print(f"baseline recorded in {state_path}; the next poll emits the rows read since")
    else:
        print(f"polled pg_stat_statements {polls:,} times: {events:,} events ({rows:,} rows of COPY TO / cursor reads) "
              f"to {where} in {time.perf_counter() - started:.1f}s")
    return 0


def configure_logging(level: str = "INFO") -> None:
    import logging

    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.ERROR)


# -- shared -----------------------------------------------------------------

def _load_refs(args: argparse.Namespace):
    from detector.calendar import WorkCalendar
    from detector.catalog import Catalog
    from detector.directory import Directory
    from detector.pipeline import ReferenceData

    for flag in ("events", "directory", "catalog", "calendar"):
        path = getattr(args, flag, None)
        if path is not None and not Path(path).is_file():
            raise CommandError(f"--{flag.replace('_', '-')} {path}: file not found")
    return ReferenceData(Directory.load(args.directory), Catalog.load(args.catalog), WorkCalendar.load(args.calendar))


def _dead_letter(args: argparse.Namespace):
    from streams.files import DeadLetterFile

    return DeadLetterFile(getattr(args, "dead_letter", None))


def _batches(path: Path, dead_letter, batch_size: int = 10_000):
    from streams.files import read_event_batches

    return read_event_batches(path, dead_letter, batch_size)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, FileNotFoundError) and exc.filename:
        text = f"file not found: {exc.filename}"
    return " ".join(text.split())


_COMMANDS: dict[str, tuple[Callable, Callable, str]] = {
    "simulate": (_setup_simulate, _simulate, "write a synthetic company's activity with labelled exfiltration"),
    "train": (_setup_train, _train, "fit baselines and the isolation forest on a baseline period"),
    "replay": (_setup_replay, _replay, "score a JSONL file of events and write alerts"),
    "evaluate": (_setup_evaluate, _evaluate, "compare alerts with labelled incidents, beside two baselines"),
    "run": (_setup_run, _run, "run the service: Kafka events in, alerts out, metrics served"),
    "demo": (_setup_demo, _demo, "everything on one machine: broker, simulated company, training, live alerts"),
    "ship": (_setup_ship, _ship, "follow a database audit log and ship its access events to a JSONL file or Kafka"),
    "poll-row-counts": (_setup_poll_row_counts, _poll_row_counts,
                        "poll pg_stat_statements for the rows of COPY TO / cursor reads that pgaudit logs as 0"),
}


if __name__ == "__main__":
    sys.exit(main())
