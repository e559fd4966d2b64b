"""A run's story in the log: every line names namespace, deployjob, run and event as fields."""

from __future__ import annotations

import json
import logging

import pytest
from pythonjsonlogger.json import JsonFormatter

from deploybell.deploy.runlog import RunLog
from tests.unit.test_outbox import make_rig, queue

FIELDS = ("namespace", "deployjob", "run", "event")


def as_json(record: logging.LogRecord) -> dict[str, object]:
    """The line as `--log-format json` writes it (kopf's formatter is python-json-logger's)."""
    return dict(json.loads(JsonFormatter().format(record)))


def test_run_log_lines_carry_the_fields(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "deploybell.run")
    RunLog("team-a", "web").info(3, "applied", "applied 2 objects", objects=2)
    [record] = caplog.records
    line = as_json(record)
    assert {k: line[k] for k in FIELDS} == {
        "namespace": "team-a",
        "deployjob": "web",
        "run": 3,
        "event": "applied",
    }
    assert line["objects"] == 2
    assert line["message"] == "team-a/web run 3: applied 2 objects"


async def test_each_delivery_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "deploybell.run")
    rig = make_rig()
    entries, _ = await rig.cycle(queue("start"))
    assert entries[0]["state"] == "Sent"
    lines = [as_json(r) for r in caplog.records if r.name == "deploybell.run"]
    assert [(line["run"], line["event"], line["message_event"]) for line in lines] == [
        (3, "delivered", "start")
    ]
    assert all(line["deployjob"] and line["namespace"] for line in lines)
