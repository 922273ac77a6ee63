"""`exfil-detector demo`, as the README runs it: broker, company, training, live alerts, clean exit."""

from __future__ import annotations

import subprocess
import sys

import pytest

from streams.broker import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_demo_streams_a_simulated_company_raises_alerts_and_exits_cleanly():
    result = subprocess.run([sys.executable, "-m", "detector.cli", "demo", "--duration", "200",
                             "--metrics-port", str(free_port()), "--employees", "30"],
                            capture_output=True, text=True, timeout=400)
    out = result.stdout
    assert result.returncode == 0, result.stderr[-2000:]
    assert "broker: Tansu on 127.0.0.1:" in out and "service: running" in out
    assert "incidents will be injected" in out
    alert_lines = [line for line in out.splitlines() if line.startswith("[")]
    assert alert_lines, out[-2000:]
    assert all(" E" in line or " account:" in line or " SA" in line for line in alert_lines)
    assert "demo finished" in out
    assert "Traceback" not in result.stderr
