"""The claims of docs/findings.md, measured again (examples/findings.py's helpers on the real packages)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.framework

_SPEC = importlib.util.spec_from_file_location("findings", Path(__file__).parent.parent / "examples" / "findings.py")
findings = importlib.util.module_from_spec(_SPEC)
sys.modules["findings"] = findings  # its dataclass looks its module up while the class is built
_SPEC.loader.exec_module(findings)


def _needs(*modules: str) -> None:
    for m in modules:
        if importlib.util.find_spec(m) is None:
            pytest.skip(f"{m} not installed")


def test_reference_findings() -> None:
    timm = findings.pair("timm", "tf1", {"lr": 1e-3, "decay": 0.9, "eps": 1e-10, "momentum": 0.9}, scales="none")
    assert timm["budgets64"] > 1e3 * timm["tolerance64"] and timm["verdict"] == "below float32"
    settings = {"decay": 0.9, "eps": 1e-10, "momentum": 0.9}
    const = findings.pair("sb3", "tf1", {**settings, "lr": 1e-3}, scales="none")
    sched = findings.pair("sb3", "tf1", settings, lrs=findings.WARMUP_COSINE, scales="none")
    assert const["verdict"] == "below float32" and sched["divergence"] > 0.1 and "lr placement" in sched["differing"]
    assert findings.pair("jax_example", "optax", {"lr": 1e-3, "momentum": 0.9})["divergence"] == 0
    assert "eps placement" in findings.pair("keras2", "keras", {})["differing"]
    assert "weight decay mode" in findings.pair("paddle", "keras", {"lr": 1e-3, "weight_decay": 1e-2},
                                                scales="none")["differing"]


def test_bitsandbytes_ignores_momentum() -> None:
    _needs("torch", "bitsandbytes")
    with_m = findings.run("bnb.32bit", {"lr": 1e-2, "momentum": 0.9}, steps=10)
    without = findings.run("bnb.32bit", {"lr": 1e-2}, steps=10)
    assert np.array_equal(with_m["w"], without["w"])


def test_mlx_rounds_the_lr_to_bfloat16() -> None:
    _needs("mlx")
    bf16_lr = 0.00099945068359375
    a, b = (findings.run("mlx", {"learning_rate": lr}, dtype="bfloat16", steps=5)["w"] for lr in (1e-3, bf16_lr))
    assert np.array_equal(a, b)
    c, d = (findings.run("mlx", {"learning_rate": lr}, dtype="float32", steps=5)["w"] for lr in (1e-3, bf16_lr))
    assert not np.array_equal(c, d)  # not vacuous: the two lrs are different numbers


def test_paddle_rounds_its_attributes_to_float32() -> None:
    _needs("paddle")
    kwargs = {"learning_rate": 1e-2, "rho": 0.95, "epsilon": 1e-6, "momentum": 0.9}
    real = findings.run("paddle", kwargs, dtype="float64", steps=20)
    exact = findings.reference("paddle", kwargs, "float64", steps=20, hyperparam_rounding="exact")
    modelled = findings.reference("paddle", kwargs, "float64", steps=20)
    assert findings.rel(real["w"], modelled, real["p0"]) < 1e-12 < 1e-9 < findings.rel(real["w"], exact, real["p0"])


def test_pfrl_ignores_maximize() -> None:
    _needs("torch", "pfrl")
    real = findings.run("pfrl", {"lr": 1e-2, "maximize": True}, steps=10)
    minimizing = findings.reference("pfrl", {"lr": 1e-2}, "float32", steps=10)
    assert findings.rel(real["w"], minimizing, real["p0"]) < 1e-4


def test_timm_loads_without_its_models_and_follows_its_version() -> None:
    """timm's optimizer loads without timm's models (no torchvision); availability checks still work after; a
    timm without the foreach argument (before 1.0.30, as on the GPU image) makes timm.foreach unsupported."""
    _needs("torch", "timm")
    import subprocess

    code = (
        "import importlib.util, sys\n"
        "from harness.adapters import timm_adapter as ta\n"
        "from harness.adapters.base import Task\n"
        "from harness.base.streams import StreamSpec\n"
        "assert ta.rmsprop_tf().__name__ == 'RMSpropTF' and 'torchvision' not in sys.modules\n"
        "assert 'timm.models' not in sys.modules and importlib.util.find_spec('timm') is not None\n"
        "assert ta.Foreach().available() is None\n"
        "task = Task(adapter='timm.foreach', kwargs={}, stream=StreamSpec(), shapes={'w': (2,)}, params0={}, steps=1)\n"
        "assert ta.Foreach().unsupported(task) is None\n"
        "ta._has_foreach = lambda: False\n"
        "assert 'has no foreach path' in ta.Foreach().unsupported(task) and ta.Foreach().bench_variants('cpu') == {}\n"
        "assert ta.Single().unsupported(task) is None\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=300,
                          cwd=Path(__file__).parent.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]
