"""Train one framework's model on one workload in an isolated worker process.

The driver (`train`) starts ``python -P -m harness.training.worker FD`` with the trainer's environment
(Keras' backend, x64, one thread), sends one request (the workload, the dtype, the runs) and reads
one ``result`` per run from the pipe (`harness.process.channel`: JSON and ``.npy``, never pickles).

A run is one of

* ``native``: the framework's own optimizer from its native arguments, as users train;
* ``reference``: the float64 reference `RMSpropSpec` of a preset's arguments steps the model,
  fed the framework's own gradients each step (closed loop). The parameters are rounded to the
  run dtype after every update (the model holds them in that dtype), the optimizer state stays float64;
* a reference run's ``replays``: other presets' references fed that run's recorded gradients,
  open loop (the gradients do not respond to the parameters), evaluated with the same model.

``perturb`` moves every initial weight one ulp up or down (seeded signs): the size two runs that
differ by one rounding grow to under these dynamics (the floor of a closed-loop comparison).
Each run records the batch loss and gradient norm of every step, and at the log-spaced steps the
parameters (canonical layout) and the whole data set's loss and accuracy.
"""

from __future__ import annotations

import importlib
import math
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from harness.process import channel, spawn
from harness.process.loading import STARTUP_GRACE
from harness.process.loading import explain as _describe
from harness.training.workloads import Workload, flatten, log_steps
from harness.training.workloads import get as workload

Payload = dict[str, Any]


def run_ids(request: dict[str, Any]) -> list[str]:
    return [i for job in request["jobs"] for r in job["runs"]
            for i in (r["id"], *(p["id"] for p in r.get("replays", ())))]


def train(env: dict[str, str], request: dict[str, Any], on_result: Callable[[str, Payload, list], None],
          on_hello: Callable[[dict], None], timeout: float) -> None:
    """Run every job of ``request`` (``{"jobs": [{"trainer", "workload", "dtype", "steps", "runs"}]}``, trainers
    that share the environment ``env``) in one worker; ``on_result(run_id, payload, arrays)`` once for every
    run and replay, an ``error`` payload with the reason when the worker fails or a run passes ``timeout``
    seconds."""
    ids = run_ids(request)
    done: set[str] = set()
    worker = spawn.Worker("harness.training.worker", [], env, channel.encode("train", request))
    reader = channel.Reader(worker.read_fd)
    deadline = time.monotonic() + timeout + STARTUP_GRACE
    reason = ""
    try:
        while len(done) < len(ids):
            message = reader.read(deadline)
            if message.kind == "hello":
                on_hello(message.body)
                continue
            run_id = message.body.get("id")
            if message.kind != "result" or run_id not in ids or run_id in done:
                raise channel.ChannelError(f"an unexpected {message.kind!r} message")
            done.add(run_id)
            on_result(run_id, message.body, message.arrays)
            deadline = time.monotonic() + timeout
    except TimeoutError:
        worker.kill()
        reason = f"timed out after {timeout:g} s (worker killed)"
    except channel.PeerClosed:
        code = worker.close()
        reason = f"worker exited with code {code}: {worker.last_line()}"
    except channel.ChannelError as exc:
        worker.kill()
        reason = f"the worker sent a malformed message ({exc}); worker killed"
    finally:
        worker.close()
    for run_id in ids:
        if run_id not in done:
            on_result(run_id, {"id": run_id, "status": "error", "reason": reason}, [])


# ---------------------------------------------------------------- worker side
def perturbed(params: dict[str, np.ndarray], dtype: str, seed: int) -> dict[str, np.ndarray]:
    """Every value moved one ulp of ``dtype`` up or down (seeded signs)."""
    kind = np.dtype(dtype)
    out = {}
    for i, (name, p) in enumerate(params.items()):
        signs = np.random.default_rng([seed, i]).integers(0, 2, p.shape).astype(bool)
        native = p.astype(kind)
        out[name] = np.where(signs, np.nextafter(native, kind.type(np.inf)),
                             np.nextafter(native, kind.type(-np.inf))).astype(np.float64)
    return out


def _rounded(params: dict[str, np.ndarray], dtype: str) -> dict[str, np.ndarray]:
    return {n: np.asarray(p, dtype).astype(np.float64) for n, p in params.items()}


class _Recorder:
    """A run's per-step losses and gradient norms and its log-step snapshots."""

    def __init__(self, w: Workload, steps: int, model: Any, data: tuple[np.ndarray, np.ndarray]):
        self.model, self.data = model, data
        self.logged = log_steps(steps)
        self.losses, self.norms = np.full(steps, np.nan), np.full(steps, np.nan)
        self.evals = np.full((len(self.logged), 2), np.nan)
        self.params = np.full((len(self.logged), w.size), np.nan)

    def snapshot(self, t: int) -> None:
        if t in self.logged:
            k = self.logged.index(t)
            self.params[k] = flatten(self.model.get())
            self.evals[k] = self.model.evaluate(*self.data)

    def arrays(self) -> list[np.ndarray]:
        return [self.losses, self.norms, self.evals, self.params]


def _run(model_cls: Any, w: Workload, dtype: str, steps: int, run: dict, data: tuple, batches: list,
         target: str, send: Callable[[str, Payload, list], None]) -> None:
    from reference import presets
    from reference.rmsprop import init, update

    params0 = _rounded(w.init(), dtype)
    if run.get("perturb") is not None:
        params0 = perturbed(params0, dtype, int(run["perturb"]))
    model = model_cls(w, dtype, params0)
    rec = _Recorder(w, steps, model, data)
    rec.snapshot(0)
    x, y = data
    grads_seen: list[dict[str, np.ndarray]] = []
    if run["kind"] == "native":
        step = model.optimizer(target, run["args"])
        for t, idx in enumerate(batches, 1):
            rec.losses[t - 1], rec.norms[t - 1] = step(*((x, y) if idx is None else (x[idx], y[idx])))
            rec.snapshot(t)
    else:
        spec = presets.get(run["preset"])(**run["args"])
        params = model.get()
        state = init(spec, params)
        for t, idx in enumerate(batches, 1):
            loss, grads = model.loss_grads(*((x, y) if idx is None else (x[idx], y[idx])))
            rec.losses[t - 1] = loss
            rec.norms[t - 1] = math.sqrt(sum(float(np.sum(g * g)) for g in grads.values()))
            if run.get("replays"):
                grads_seen.append(grads)
            params, state = update(spec, state, params, grads)
            params = _rounded(params, dtype)
            model.set(params)
            rec.snapshot(t)
    send(run["id"], {"status": "done"}, rec.arrays())
    for replay in run.get("replays", ()):  # open loop: another preset on this run's gradients
        spec = presets.get(replay["preset"])(**replay["args"])
        model.set(params0)
        open_rec = _Recorder(w, steps, model, data)
        open_rec.snapshot(0)
        params, state = params0, init(spec, params0)
        for t, grads in enumerate(grads_seen, 1):
            params, state = update(spec, state, params, grads)
            params = _rounded(params, dtype)
            model.set(params)
            open_rec.snapshot(t)
        send(replay["id"], {"status": "done"}, open_rec.arrays())


def _main(fd: int) -> int:
    from harness.base.host import package_version

    request = channel.read_stdin_request().body
    sent: set[str] = set()

    def send(run_id: str, body: Payload, arrays: list) -> None:
        if run_id not in sent:  # once per run: an error after a run's result is its replays' error
            sent.add(run_id)
            channel.send(fd, "result", {"id": run_id, **body}, arrays)

    modules = {m for job in request["jobs"] for m in job["trainer"]["modules"]}
    channel.send(fd, "hello", {"versions": {m: package_version(m) for m in sorted(modules)}})
    loaded: dict[str, Any] = {}
    for job in request["jobs"]:
        trainer = job["trainer"]
        ids = [i for r in job["runs"] for i in (r["id"], *(p["id"] for p in r.get("replays", ())))]
        try:
            module_name, cls = trainer["model"].split(":")
            if module_name not in loaded:
                loaded[module_name] = importlib.import_module(module_name)
                loaded[module_name].determinism()
            model_cls = getattr(loaded[module_name], cls)
        except Exception as exc:  # the framework does not import: every run of it says why
            for run_id in ids:
                send(run_id, {"status": "error", "reason": f"cannot load {trainer['name']}: {_describe(exc)}"}, [])
            continue
        w, dtype, steps = workload(job["workload"]), job["dtype"], int(job["steps"])
        x, y = w.data()
        data = (x.astype(dtype), y if w.classifier else y.astype(dtype))
        batches = w.batches(steps, len(x))
        for run in job["runs"]:
            try:
                _run(model_cls, w, dtype, steps, run, data, batches, trainer["target"], send)
            except Exception as exc:  # one bad run (a framework refusing the arguments) must not sink the rest
                for run_id in (run["id"], *(p["id"] for p in run.get("replays", ()))):
                    send(run_id, {"status": "error", "reason": _describe(exc)}, [])
    return 0


if __name__ == "__main__":
    spawn.worker_start()
    sys.exit(_main(int(sys.argv[1])))
