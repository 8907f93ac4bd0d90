"""Keras Tuner's distributed mode through the CLI, on 127.0.0.1 only.

A chief (``--chief``) and two workers (``--worker tuner1/tuner2``) run as
subprocesses on a free loopback port; all three are killed mid-search and
started again without ``--overwrite`` (case C08): the chief says it
resumed, trial ids continue, and no trial is lost or run twice.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

_CHILD = """
import sys
from kerasweights.cli import main
sys.exit(main(sys.argv[1:]))
"""

_SEARCH = [
    "--model",
    "conv",
    "--initializers",
    "glorot_uniform",
    "--trials",
    "4",
    "--epochs",
    "1",
    "--limit",
    "100",
]


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(out, port, role, logs, tag):
    argv = ["tune", *_SEARCH, "--output", str(out)]
    argv += ["--oracle", f"127.0.0.1:{port}"]
    argv += ["--chief"] if role == "chief" else ["--worker", role]
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("KERASTUNER_")
    }
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    err = open(logs / f"{tag}-{role}.err", "w")  # noqa: SIM115
    out_file = open(logs / f"{tag}-{role}.out", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, *argv],
        env=env,
        stdout=out_file,
        stderr=err,
    )
    proc.files = (err, out_file)
    return proc


def _stop(procs):
    for p in procs:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
        p.wait()
        for f in p.files:
            f.close()


def _records(out):
    found = {}
    for name in os.listdir(out / "tuner"):
        if name.startswith("kerasweights-trials-") and name.endswith(".json"):
            try:
                items = json.loads((out / "tuner" / name).read_text())
            except ValueError:
                continue
            for item in items:
                found.setdefault(item["trial_id"], []).append(item)
    return found


def test_chief_and_two_workers_survive_a_restart(tmp_path):
    out = tmp_path / "run"
    logs = tmp_path / "logs"
    logs.mkdir()
    port = _free_port()
    roles = ["chief", "tuner1", "tuner2"]

    procs = [_start(out, port, r, logs, "first") for r in roles]
    try:
        deadline = time.monotonic() + 300
        first = {}
        while time.monotonic() < deadline:
            if (out / "tuner").is_dir():
                first = _records(out)
            if first or any(p.poll() is not None for p in procs):
                break
            time.sleep(0.2)
    finally:
        _stop(procs)
    errors = "".join((logs / f"first-{r}.err").read_text() for r in roles)
    assert first, errors[-3000:]
    assert len(first) < 4, "the search finished before the kill"

    procs = [_start(out, port, r, logs, "second") for r in roles]
    try:
        deadline = time.monotonic() + 500
        while time.monotonic() < deadline:
            codes = [p.poll() for p in procs]
            if None not in codes or any(c not in (None, 0) for c in codes):
                break
            time.sleep(0.5)
    finally:
        _stop(procs)
    chief_err = (logs / "second-chief.err").read_text()
    codes = [p.returncode for p in procs]
    assert codes == [0, 0, 0], chief_err[-3000:]
    assert "Resumed the search" in chief_err
    assert "Chief oracle listening on 127.0.0.1" in chief_err

    summary = json.loads((out / "summary.json").read_text())
    ids = [t["trial_id"] for t in summary["trials"]]
    assert sorted(ids) == ["0", "1", "2", "3"]  # none lost, none twice
    assert {t["worker"] for t in summary["trials"]} <= {"tuner1", "tuner2"}
    by_id = {t["trial_id"]: t for t in summary["trials"]}
    for trial_id, (record, *_) in first.items():
        assert by_id[trial_id] == record  # finished before: kept, not rerun
    # Every finished trial ran exactly once over both starts.
    assert all(len(v) == 1 for v in _records(out).values())
    assert summary["settings"]["role"] == "chief"
    assert summary["settings"]["resumed"]["finished_trials"] == len(first)
    assert os.path.isdir(out / "saved_model")
    worker_out = (logs / "second-tuner1.out").read_text()
    assert "Worker tuner1 ran trials" in worker_out
