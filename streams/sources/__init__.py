"""Database audit logs -> contract events: one adapter per log format.

Every adapter follows `base.Adapter`: fed line by line with byte positions, it emits
events in input order and tells the shipper a safe restart position. `make_adapter`
builds one from a format name of `exfil-detector ship --format`.
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.sources.base import MAIN, Adapter, Batch, BadRecord

FORMATS = ("pgaudit-stderr", "pgaudit-csv", "pgaudit-json", "mariadb-audit", "mysql-enterprise-json", "aws-das")

__all__ = ["FORMATS", "MAIN", "Adapter", "Batch", "BadRecord", "SourceSettings", "make_adapter"]


@dataclass(frozen=True)
class SourceSettings:
    """What the operator can tune, whatever the format (each adapter uses what applies)."""

    log_line_prefix: str = "%m [%p] "       # pgaudit-stderr: the server's log_line_prefix
    identity_pattern: str | None = None      # regex with (?P<employee>...) for application / SET
    log_timezone: str = "UTC"                # zone of timestamps written without one (server_audit)
    join_window_s: float = 5.0               # mariadb-audit: wait this long (input time) for the slow log
    group_window_s: float = 2.0              # other formats: the lines of one statement arrive within this
    inline_parameters: bool = True           # pgaudit: write bind parameters into $n placeholders
    logins: bool = True                      # emit LOGIN events for successful connections


def make_adapter(fmt: str, settings: SourceSettings | None = None) -> Adapter:
    """The adapter for a `--format` name; ValueError names an unknown format or a bad setting."""
    s = settings or SourceSettings()
    if fmt.startswith("pgaudit-"):
        from streams.sources.pgaudit import PgauditAdapter, PgauditSettings

        destination = {"pgaudit-stderr": "stderr", "pgaudit-csv": "csv", "pgaudit-json": "json"}.get(fmt)
        if destination is not None:
            return PgauditAdapter(PgauditSettings(destination, s.log_line_prefix, s.log_timezone, s.identity_pattern,
                                                  s.group_window_s, s.inline_parameters, s.logins))
    if fmt == "mariadb-audit":
        from streams.sources.mariadb import MariadbAuditAdapter, MariadbSettings

        return MariadbAuditAdapter(MariadbSettings(s.log_timezone, s.identity_pattern, s.join_window_s, logins=s.logins))
    if fmt == "mysql-enterprise-json":
        from streams.sources.mysql_enterprise import MysqlEnterpriseAdapter, MysqlEnterpriseSettings

        return MysqlEnterpriseAdapter(MysqlEnterpriseSettings(s.identity_pattern, s.group_window_s, s.logins))
    if fmt == "aws-das":
        from streams.sources.aws_das import AwsDasAdapter, AwsDasSettings

        return AwsDasAdapter(AwsDasSettings(s.identity_pattern, s.group_window_s, s.logins, s.inline_parameters))
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
