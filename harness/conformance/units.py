"""A run as data: its units of work, each a canonical spec with a content hash.

A unit is one conformance task (case x adapter x device x dtype x environment), the suite's
parity scenarios (computed in the driver) or its closed-loop training. Its spec names
everything its result depends on: the task as the worker receives it (`wire.encode_task`, the
arrays by digest), the reference semantics it is measured against, the environment, the suite
and the harness source (`shards.code_digest`). Equal hashes mean equal results, up to the
machine and the installed packages, which a shard records beside the hash
(`Identity`) and resume compares too.

``--shard k/n`` keeps the units whose place in the plan is k-1 modulo n: deterministic, the
same split on every machine that plans the same suite, and balanced in count. ``--shard gpu``
keeps the GPU tasks (a GPU runner's part) and ``--shard cpu`` the rest: the plan itself does not
depend on the machine (a GPU task the machine cannot run is planned everywhere, absent where
there is no GPU), so a CPU runner's and a GPU runner's folders merge.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
import site
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import numpy as np

from harness.adapters import ADAPTERS, resolve
from harness.base import envs, fingerprint, shards
from harness.conformance.cases import Suite
from harness.conformance.plan import Planned, RunError
from harness.conformance.wire import encode_task
from reference import implementations


@dataclass(frozen=True, kw_only=True)
class Unit:
    """One unit of a run: ``kind`` is ``conformance`` (with its `Planned`), ``parity`` or ``training``."""

    order: int
    kind: str
    spec: dict[str, Any]
    hash: str
    planned: Planned | None = None

    @property
    def environment(self) -> str:
        return self.planned.environment if self.planned is not None else envs.DEFAULT

    def describe(self) -> str:
        if self.planned is None:
            return f"{self.kind} ({self.spec.get('suite')})"
        p = self.planned
        return f"{p.case.name} {p.label} {p.device} {p.dtype}"


Part = tuple[str | None, int, int]  # (device or None, k, n)


def parse_shard(text: str | None) -> Part | None:
    """``--shard``: ``k/n`` (1 <= k <= n <= 1024), a device (``cpu``, ``gpu``: that device's tasks; the parity
    and training run with cpu) or both (``gpu:1/2``); None without the option."""
    if text is None:
        return None
    text = re.sub(r"\s+", "", str(text))
    match = re.fullmatch(r"(cpu|gpu)(?::(\d+)/(\d+))?", text) or re.fullmatch(r"()(\d+)/(\d+)", text)
    if not match or (match[2] and not 1 <= int(match[2]) <= int(match[3]) <= 1024):
        raise RunError(f"--shard {text!r}: give k/n with 1 <= k <= n (--shard 2/3 runs the second of three parts), "
                       "a device (--shard gpu: the GPU runner's part) or both (--shard cpu:1/2)")
    return match[1] or None, int(match[2] or 1), int(match[3] or 1)


def shard_label(part: Part | None) -> str:
    if part is None:
        return "1/1"
    device, k, n = part
    return f"{device}:{k}/{n}" if device else f"{k}/{n}"


def in_shard(unit: Unit, part: Part | None) -> bool:
    if part is None:
        return True
    device, k, n = part
    if device is not None and (unit.planned.device if unit.planned is not None else "cpu") != device:
        return False
    return unit.order % n == k - 1


# ------------------------------------------------------------------- environments
def environment_adapters(env: envs.Environment, candidates: list[str]) -> list[str]:
    """The adapters among ``candidates`` that run in ``env``: its own list, else those whose implementation
    uses a package it pins (``optax==0.1.7`` -> optax; ``keras==3.0.5`` -> keras.*; ``jax==0.6.2`` -> optax,
    keras.jax, jax_example)."""
    if env.adapters:
        try:
            named = set(resolve(list(env.adapters)))
        except KeyError as exc:
            raise RunError(f"environment {env.name!r}: {exc.args[0]}") from None
        return [a for a in candidates if a in named]
    pinned = set(env.distributions)
    targets = {t for r in implementations.all_records() if pinned & {envs.normalise(p) for p in r.packages}
               for t in r.adapters}
    return [a for a in candidates if ADAPTERS[a].target in targets]


def with_environments(tasks: list[Planned], environments: list[envs.Environment], own: bool = True
                      ) -> list[Planned]:
    """Each task (unless ``own`` is false), followed by its copy in every named environment that runs its
    adapter."""
    if not environments:
        return tasks
    adapters = list(dict.fromkeys(p.adapter for p in tasks))
    runs = {env.name: set(environment_adapters(env, adapters)) for env in environments}
    for env in environments:
        if not runs[env.name]:
            raise RunError(f"environment {env.name!r} ({', '.join(env.packages)}): no adapter of this run uses it; "
                           "name them with adapters = [...] (or --adapter)")
    out = []
    for p in tasks:
        if own:
            out.append(p)
        out.extend(dataclasses.replace(p, environment=env.name) for env in environments if p.adapter in runs[env.name])
    return out


# --------------------------------------------------------------------------- specs
def _task_spec(p: Planned, suite: Suite, environments: dict[str, envs.Environment]) -> dict[str, Any]:
    env = environments.get(p.environment)
    spec: dict[str, Any] = {
        "kind": "conformance", "suite": suite.name, "case": p.case.name, "adapter": p.adapter,
        "target": ADAPTERS[p.adapter].target, "device": p.device, "dtype": p.dtype,
        "environment": env.identity() if env is not None else {"name": envs.DEFAULT},
        # the knobs, not repr(): a frozenset's repr follows the per-process string hash seed
        "reference": p.spec.knobs() if p.spec is not None else None, "code": shards.code_digest()}
    if p.task is None:
        spec["unsupported"] = p.reason
    else:
        body, arrays = encode_task(0, p.task)
        spec["task"] = body
        spec["arrays"] = [hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest() for a in arrays]
    return spec


def plan_units(suite: Suite, tasks: list[Planned], environments: list[envs.Environment], *, parity: bool,
               training: bool) -> list[Unit]:
    """Every unit of the run in plan order: the tasks, then the parity scenarios, then the training."""
    named = {e.name: e for e in environments}
    specs: list[tuple[str, dict[str, Any], Planned | None]] = [("conformance", _task_spec(p, suite, named), p)
                                                               for p in tasks]
    for kind, wanted in (("parity", parity and bool(suite.parity)), ("training", training and bool(suite.train))):
        if wanted:
            specs.append((kind, {"kind": kind, "suite": suite.name, "suite_sha256": suite.digest,
                                 "code": shards.code_digest()}, None))
    units, seen = [], set()
    for order, (kind, spec, planned) in enumerate(specs):
        digest = shards.spec_hash(spec)
        if digest in seen:  # two identical tasks in one plan (a suite listing a case twice): one result
            spec = {**spec, "occurrence": order}
            digest = shards.spec_hash(spec)
        seen.add(digest)
        units.append(Unit(order=order, kind=kind, spec=spec, hash=digest, planned=planned))
    return units


# ------------------------------------------------------------------------ identity
@dataclass(frozen=True)
class Identity:
    """Where a shard is valid: the environment's installed packages and the machine's fingerprint."""

    environment: dict[str, Any]
    machine: str


@functools.lru_cache(maxsize=1)
def _own_packages() -> str:
    """A digest of every distribution installed in the harness's own environment (its site-packages, not
    whatever the current directory adds to ``sys.path``: the same environment hashes the same from anywhere)."""
    names = sorted({f"{envs.normalise(d.metadata['Name'] or '')}=={d.version}"
                    for d in metadata.distributions(path=site.getsitepackages())})
    return hashlib.sha256("\n".join(names).encode()).hexdigest()


@functools.lru_cache(maxsize=1)
def machine_digest() -> str:
    return hashlib.sha256(shards.canonical(fingerprint.machine())).hexdigest()


def identity(environment: str, environments: dict[str, envs.Environment]) -> Identity:
    """The harness's own environment by a digest of its site-packages; a named one by a digest of its record."""
    if environment == envs.DEFAULT:
        return Identity({"name": envs.DEFAULT, "packages": _own_packages()}, machine_digest())
    env = environments[environment]
    held = envs.installed(envs.location(env))
    packages = "not created" if held is None else hashlib.sha256(shards.canonical(held)).hexdigest()
    return Identity({"name": env.name, "packages": packages}, machine_digest())


__all__ = [
    "Identity",
    "Unit",
    "environment_adapters",
    "identity",
    "in_shard",
    "machine_digest",
    "parse_shard",
    "plan_units",
    "shard_label",
    "with_environments",
]
