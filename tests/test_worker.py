"""Worker isolation: a raising, crashing or hanging framework becomes an error row; the run goes on."""

from __future__ import annotations

import numpy as np

from harness.adapters import AdapterInfo, Task
from harness.base.streams import StreamSpec
from harness.conformance.worker import run_worker

FAKE = AdapterInfo("fake", "tests.fake_adapter:Fake", "torch", "fake")
SHAPES = {"w": (3,)}
P0 = {"w": np.arange(3.0)}


def _task(seed: int, timeout: float = 60.0, device: str = "cpu", optional: bool = False) -> Task:
    return Task(adapter="fake", kwargs={}, stream=StreamSpec("gaussian", seed), shapes=SHAPES, params0=P0, steps=4,
                device=device, record_steps=(1, 4), timeout=timeout, optional_device=optional)


def _run(tasks: list[Task]) -> tuple[dict[int, dict], list[dict]]:
    out: dict[int, dict] = {}
    hellos: list[dict] = []
    run_worker([FAKE], tasks, out.__setitem__, hellos.append)
    assert sorted(out) == list(range(len(tasks))), "every task gets exactly one payload"
    return out, hellos


def test_results_stream_back_with_snapshots_and_a_raising_task_is_an_error(monkeypatch) -> None:
    monkeypatch.setenv("FAKE_2", "raise")
    out, hellos = _run([_task(1), _task(2), _task(3)])
    assert [s.step for s in out[0]["snapshots"]] == [1, 4]
    assert out[0]["status"] == out[2]["status"] == "done"
    assert out[1] == {"status": "error", "reason": out[1]["reason"]}
    assert out[1]["reason"].startswith("RuntimeError: boom (fake_adapter.py:")
    assert hellos[0]["versions"] == {"fake": "1.0"} and hellos[0]["devices"] == {"fake": {"cpu": "cpu"}}


def test_a_crash_is_an_error_for_that_task_and_a_fresh_worker_runs_the_rest(monkeypatch) -> None:
    monkeypatch.setenv("FAKE_2", "crash")
    out, hellos = _run([_task(1), _task(2), _task(3)])
    assert out[0]["status"] == "done" and out[2]["status"] == "done"
    assert out[1]["status"] == "error" and "exited with code 3" in out[1]["reason"]
    assert len(hellos) == 2  # the second worker said hello too


def test_a_hang_times_out_and_the_next_task_still_runs(monkeypatch) -> None:
    monkeypatch.setenv("FAKE_1", "hang")
    out, _ = _run([_task(1, timeout=2), _task(2)])
    assert out[0]["status"] == "error" and "timed out after 2 s" in out[0]["reason"]
    assert out[1]["status"] == "done"


def test_missing_framework_is_skipped_with_its_reason(monkeypatch) -> None:
    monkeypatch.setenv("FAKE_MISSING", "fakeframework not installed")
    out, _ = _run([_task(1), _task(2)])
    assert out[0] == out[1] == {"status": "skipped", "reason": "fakeframework not installed"}


def test_devices_absent_optional_skipped_explicit_present_runs(monkeypatch) -> None:
    out, _ = _run([_task(1, device="gpu", optional=True), _task(1, device="gpu")])
    assert out[0]["status"] == "absent" and out[1]["status"] == "skipped"
    assert "no gpu visible to fake" in out[1]["reason"]
    monkeypatch.setenv("FAKE_GPU", "1")
    out, _ = _run([_task(1, device="gpu", optional=True)])
    assert out[0]["status"] == "done"


def test_an_adapter_that_cannot_be_imported_is_an_error_for_all_its_tasks() -> None:
    broken = AdapterInfo("fake", "tests.no_such_module:Fake", "torch", "fake")
    out: dict[int, dict] = {}
    run_worker([broken], [_task(1), _task(2)], out.__setitem__)
    assert {p["status"] for p in out.values()} == {"error"}
    assert "cannot load adapter fake: ModuleNotFoundError" in out[0]["reason"]


def test_a_worker_that_dies_before_hello_fails_every_task_once(tmp_path) -> None:
    """A framework whose import kills the process must not be restarted once per task."""
    fake_python = tmp_path / "python"
    fake_python.write_text("#!/bin/sh\nexit 7\n")
    fake_python.chmod(0o755)
    out: dict[int, dict] = {}
    run_worker([FAKE], [_task(1), _task(2)], out.__setitem__, python=str(fake_python))
    assert [p["status"] for p in out.values()] == ["error", "error"]
    assert "exited with code 7" in out[0]["reason"]


def test_workers_share_a_gpu_unless_the_user_says_otherwise(monkeypatch) -> None:
    from harness.process.spawn import child_env

    monkeypatch.delenv("XLA_PYTHON_CLIENT_PREALLOCATE", raising=False)
    monkeypatch.delenv("TF_FORCE_GPU_ALLOW_GROWTH", raising=False)
    env = child_env({"KERAS_BACKEND": "jax"})
    # without these, a second JAX or TensorFlow worker on the same GPU finds its memory taken
    assert env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false" and env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    monkeypatch.setenv("XLA_PYTHON_CLIENT_PREALLOCATE", "true")
    assert child_env({})["XLA_PYTHON_CLIENT_PREALLOCATE"] == "true"
