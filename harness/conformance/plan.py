"""Planning a conformance run: one task per case x adapter x device x dtype, with its semantics."""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from functools import cached_property

from harness.adapters import ADAPTERS, BUILTIN, Task, resolve
from harness.base.limits import check_case
from harness.conformance.cases import Case, Suite
from harness.conformance.metrics import record_steps
from reference import RMSpropSpec
from reference.errors import InputValueError
from reference.translate import Unsupported


class RunError(InputValueError):
    """Bad run options (no task selected, unknown adapter, a device nothing could run on); one line."""


@dataclass(kw_only=True)
class Planned:
    """One case x adapter x device x dtype, with the semantics its framework will run."""

    case: Case
    adapter: str
    device: str
    dtype: str
    spec: RMSpropSpec | None
    task: Task | None
    reason: str = ""  # why it is unsupported (then task is None)
    environment: str = "default"  # a named package set (`harness.base.envs`), or the harness's own

    @property
    def label(self) -> str:
        """The ``adapter`` column: the adapter, and the environment when it is not the harness's own
        (``optax@optax-0.1.7``), so versions stand side by side in every table."""
        return self.adapter if self.environment == "default" else f"{self.adapter}@{self.environment}"

    @cached_property
    def key(self) -> tuple:
        """Tasks with equal keys share one reference trajectory."""
        return (self.case.name, self.spec, json.dumps(self.task.kwargs, sort_keys=True, default=str), self.dtype)


def plan(
    suite: Suite,
    adapters: list[str] | None = None,
    devices: list[str] | None = None,
    dtypes: list[str] | None = None,
    cases: list[str] | None = None,
) -> list[Planned]:
    """Every task of ``suite``; ``adapters`` filters (names or families), ``devices`` (``cpu``, ``gpu``
    or ``auto``) and ``dtypes`` replace the cases' own, ``cases`` filters by name (shell patterns)."""
    try:
        selected = resolve(adapters) if adapters else None
    except KeyError as exc:
        raise RunError(str(exc.args[0])) from None
    wanted = set(selected) if selected else None
    users = [a for a in selected or [] if a not in BUILTIN]  # user adapters join the cases they fit
    out: list[Planned] = []
    for case in suite.cases:
        if cases and not any(fnmatch.fnmatchcase(case.name, p) for p in cases):
            continue
        steps = record_steps(case.steps, case.records)
        check_case(case, len(steps))
        params0, lrs = case.params0(), case.lrs()
        for adapter in (*case.adapters, *(u for u in users if u not in case.adapters and _joins(case, u))):
            if wanted is not None and adapter not in wanted:
                continue
            if devices and devices != ["auto"]:
                device_list = [(d, False) for d in devices]
            elif devices == ["auto"] or case.devices == "auto":  # cpu where it runs; a gpu only if visible
                device_list = [(d, d != "cpu") for d in ADAPTERS[adapter].devices]
            else:
                device_list = [(d, False) for d in case.devices]
            try:
                native, spec, reason = case.native(adapter), case.reference_spec(adapter), ""
            except Unsupported as exc:
                native, spec, reason = None, None, str(exc)
            for device, optional in device_list:
                if native is None and optional:
                    continue  # an unsupported row for a device that may not exist says nothing
                for dtype in dtypes or case.dtypes:
                    task = None if native is None else Task(
                        adapter=adapter, kwargs=native, stream=case.stream, shapes=case.shapes, params0=params0,
                        steps=case.steps, dtype=dtype, device=device, record_steps=steps, lrs=lrs,
                        optional_device=optional, timeout=case.timeout)
                    out.append(Planned(case=case, adapter=adapter, device=device, dtype=dtype, spec=spec, task=task,
                                       reason=reason))
    if cases and not any(fnmatch.fnmatchcase(c.name, pat) for c in suite.cases for pat in cases):
        raise RunError(f"no case of suite {suite.name!r} matches --case {','.join(cases)}; its cases: "
                       f"{', '.join(c.name for c in suite.cases)}")
    if not out and (suite.cases or adapters):  # a training-only suite plans no conformance task
        what = f" matches --adapter {','.join(adapters)}" if adapters else ""
        raise RunError(f"no task{what} in suite {suite.name!r}")
    return out


def _joins(case: Case, adapter: str) -> bool:
    """Whether a user adapter named on the command line runs in ``case``: wherever the case's
    semantics reach it (a ``spec``, no arguments at all, or arguments for its family), or
    where an adapter of its family runs."""
    family = ADAPTERS[adapter].family
    return (case.spec is not None or case.args is None or family in case.args
            or any(ADAPTERS[a].family == family for a in case.adapters))


__all__ = ["Planned", "RunError", "plan"]
