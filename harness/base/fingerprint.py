"""The machine fingerprint: everything that decides how a framework's kernels round.

Two runs of the same code on the same fingerprint (and the same package versions) are
bitwise identical: workers pin one thread and the streams are seeded. Across fingerprints
the frameworks take other SIMD paths (AVX2 or AVX-512, FMA or not, another oneDNN or BLAS
kernel), so float64 rounding differs while every row stays inside its tolerance. The gate
(`harness.gate`) compares tightly on the same fingerprint and in share of tolerance across
fingerprints; this module says which is which.

The fingerprint holds:

* ``cpu``: vendor, family and model numbers (not the marketing name, which virtual machines
  blank out) and the instruction-set flags that change arithmetic (`ROUNDING_FLAGS`);
* ``numpy``: its SIMD dispatch (``found``) and BLAS, which the reference's norms use;
* ``frameworks``: what each worker reported after importing its framework: torch's CPU
  capability (``ATEN_CPU_CAPABILITY``), oneDNN, MKL and BLAS, TensorFlow's oneDNN switch, JAX's
  backend (MKL, OpenBLAS and oneDNN pick their kernels from the CPU flags above, unless one of
  the variables below caps them);
* ``env``: the variables that override any of those dispatches (`DISPATCH_ENV`);
* ``gpus``: name and driver of every GPU a worker used.

``digest`` is the SHA-256 of that canonical JSON.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

#: CPU flags that select other kernels (and therefore other roundings): vector width, FMA, half types.
ROUNDING_FLAGS = ("sse2", "sse3", "ssse3", "sse4_1", "sse4_2", "avx", "avx2", "fma", "fma4", "f16c", "avx512f",
                  "avx512dq", "avx512cd", "avx512bw", "avx512vl", "avx512ifma", "avx512vbmi", "avx512_vnni",
                  "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16", "amx_fp16", "asimd", "asimdhp",
                  "fphp", "sve", "sve2", "neon")
#: Environment variables that override a math library's or framework's instruction-set dispatch.
DISPATCH_ENV = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "TF_ENABLE_ONEDNN_OPTS",
                "XLA_FLAGS", "NPY_DISABLE_CPU_FEATURES", "NPY_ENABLE_CPU_FEATURES", "MKL_CBWR",
                "MKL_ENABLE_INSTRUCTIONS", "OPENBLAS_CORETYPE", "MKL_DEBUG_CPU_TYPE")


def cpu() -> dict[str, Any]:
    """Vendor, family, model, stepping, name and the rounding-relevant flags of the first CPU."""
    info: dict[str, Any] = {"machine": platform.machine(), "system": platform.system()}
    with contextlib.suppress(OSError):
        fields: dict[str, str] = {}
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if not line.strip():
                if fields:
                    break  # the first processor is enough: they are identical
                continue
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
        info |= {"vendor": fields.get("vendor_id") or fields.get("CPU implementer"),
                 "family": fields.get("cpu family") or fields.get("CPU architecture"),
                 "model": fields.get("model") or fields.get("CPU part"),
                 "stepping": fields.get("stepping") or fields.get("CPU revision"),
                 "name": fields.get("model name") or fields.get("Hardware")}
        flags = set((fields.get("flags") or fields.get("Features") or "").split())
        info["flags"] = [f for f in ROUNDING_FLAGS if f in flags]
    return info


def numpy_dispatch() -> dict[str, Any]:
    """NumPy's SIMD dispatch and BLAS (the float64 reference runs on NumPy)."""
    import numpy as np

    try:
        config = np.show_config(mode="dicts")
    except Exception:  # an old or unusual NumPy build: the version alone
        return {"version": np.__version__}
    simd = config.get("SIMD Extensions") or {}
    blas = (config.get("Build Dependencies") or {}).get("blas") or {}
    return {"version": np.__version__, "simd": sorted(simd.get("found") or []),
            "blas": f"{blas.get('name')} {blas.get('version')}".strip()}


def dispatch() -> dict[str, Any]:
    """In a worker, after its adapters imported their frameworks: each one's kernel dispatch."""
    out: dict[str, Any] = {}
    torch = sys.modules.get("torch")
    if torch is not None:
        with contextlib.suppress(Exception):
            config = torch.__config__.show()
            blas = next((part.split("=", 1)[1] for part in config.replace(",", " ").split()
                         if part.startswith("BLAS_INFO=")), None)
            out["torch"] = {"cpu_capability": torch.backends.cpu.get_cpu_capability(),
                            "mkldnn": bool(torch.backends.mkldnn.is_available()),
                            "mkl": bool(torch.backends.mkl.is_available()), "blas": blas}
            if torch.cuda.is_available():
                out["torch"]["cuda"] = torch.version.cuda
                out["torch"]["cudnn"] = torch.backends.cudnn.version()
    if "tensorflow" in sys.modules:
        with contextlib.suppress(Exception):
            from tensorflow.python.util import _pywrap_util_port

            out["tensorflow"] = {"onednn": bool(_pywrap_util_port.IsMklEnabled()),
                                 "onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default")}
    jax = sys.modules.get("jax")
    if jax is not None:
        with contextlib.suppress(Exception):
            out["jax"] = {"backend": jax.default_backend(), "devices": sorted({d.device_kind for d in jax.devices()})}
    overrides = {k: os.environ[k] for k in DISPATCH_ENV if k in os.environ}
    if overrides:
        out["env"] = overrides  # as this worker saw them (its adapter's environment included)
    return out


def gpus() -> list[dict[str, str]]:
    """Name and driver of each NVIDIA GPU (``nvidia-smi``; empty without one)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run([smi, "--query-gpu=name,driver_version", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    rows = [line.split(",") for line in out.splitlines() if line.strip()]
    return [{"name": r[0].strip(), "driver": r[1].strip() if len(r) > 1 else ""} for r in rows]


def machine() -> dict[str, Any]:
    """The driver's part of the fingerprint (CPU, NumPy, dispatch overrides, GPUs)."""
    return {"cpu": cpu(), "numpy": numpy_dispatch(), "env": {k: os.environ[k] for k in DISPATCH_ENV if k in os.environ},
            "gpus": gpus()}


def fingerprint(machine_part: dict[str, Any], hellos: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The whole fingerprint with its ``digest``; ``hellos`` are the workers' hello messages."""
    seen: dict[str, set[str]] = {}
    for hello in hellos or []:  # workers say hello in any order: merge them order-free
        for name, value in (hello.get("dispatch") or {}).items():
            seen.setdefault(name, set()).add(json.dumps(value, sort_keys=True, default=str))
    frameworks: dict[str, Any] = {}
    for name in sorted(seen):
        values = [json.loads(v) for v in sorted(seen[name])]
        frameworks[name] = values[0] if len(values) == 1 else values
    cpu_part = machine_part.get("cpu", {})
    identity = {
        "cpu": {k: cpu_part.get(k) for k in ("machine", "vendor", "family", "model", "flags")},
        "numpy": machine_part.get("numpy"),
        "env": machine_part.get("env"),
        "frameworks": frameworks,
        "gpus": machine_part.get("gpus"),
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()
    return {"digest": digest, **identity, "cpu_name": cpu_part.get("name"), "stepping": cpu_part.get("stepping")}


def differences(a: dict[str, Any] | None, b: dict[str, Any] | None) -> list[str]:
    """What differs between two fingerprints, readably ("cpu.flags: avx512f only in the baseline")."""
    if not a or not b:
        return ["no fingerprint recorded" + (" in the baseline" if not a else " in the current run")]
    out = []
    for section in ("cpu", "numpy", "env", "frameworks", "gpus"):
        x, y = a.get(section), b.get(section)
        if section == "frameworks" and isinstance(x, dict) and isinstance(y, dict):
            shared = set(x) & set(y)  # a run that used fewer frameworks is not another machine
            x, y = {k: x[k] for k in shared}, {k: y[k] for k in shared}
        if x == y:
            continue
        if isinstance(x, dict) and isinstance(y, dict):
            for key in sorted(set(x) | set(y)):
                if x.get(key) == y.get(key):
                    continue
                xv, yv = x.get(key), y.get(key)
                if isinstance(xv, list) and isinstance(yv, list):
                    only_a = [f for f in xv if f not in yv]
                    only_b = [f for f in yv if f not in xv]
                    parts = ([f"{', '.join(only_a)} only in the baseline"] if only_a else []) + \
                            ([f"{', '.join(only_b)} only now"] if only_b else [])
                    out.append(f"{section}.{key}: {'; '.join(parts)}")
                else:
                    out.append(f"{section}.{key}: {xv!r} vs {yv!r}")
        else:
            out.append(f"{section}: {x!r} vs {y!r}")
    return out


__all__ = ["DISPATCH_ENV", "ROUNDING_FLAGS", "cpu", "differences", "dispatch", "fingerprint", "gpus", "machine",
           "numpy_dispatch"]
