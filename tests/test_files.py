"""Reading JSONL event files: every line, wherever the read chunks end, and the right line numbers."""

from __future__ import annotations

import io

import orjson
import pytest

from streams.files import DeadLetterFile, _line_chunks, read_event_batches

GOOD = b'{"ts":"2026-09-02T21:30:13.796+08:00","db_user":"alice","action":"SELECT","rows":3}'


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 64, 1 << 20])
@pytest.mark.parametrize("data", [
    b"", b"\n", b"a", b"a\n", b"a\nb", b"a\nb\n", b"\n\nab\n\ncd", b"a\r\nbb\r\n\r\n", b"x" * 100 + b"\n" + b"y" * 50,
])
def test_lines_are_those_of_file_iteration_whatever_the_chunk_size(data: bytes, chunk_size: int):
    expected = [line.rstrip(b"\n") for line in io.BytesIO(data)]
    got = [line for lines in _line_chunks(io.BytesIO(data), chunk_size) for line in lines]
    assert got == expected


def test_bad_lines_name_their_line_number_and_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(GOOD + b"\r\n" + b"   \n" + b"{not json\n" + b"\n" + GOOD + b"\n" + b"[1]")
    dead = DeadLetterFile(tmp_path / "dead.jsonl")
    batches = list(read_event_batches(path, dead, batch_size=1))
    dead.close()
    assert [len(b) for b in batches] == [1, 1]
    records = [orjson.loads(line) for line in (tmp_path / "dead.jsonl").read_bytes().splitlines()]
    assert [r["source"] for r in records] == [f"{path}:3", f"{path}:6"]
    assert [r["raw"] for r in records] == ["{not json", "[1]"]
