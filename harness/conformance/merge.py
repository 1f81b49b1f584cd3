"""Merging run folders: the parts of one plan, run on several machines, into one run folder.

Each ``run --shard k/n`` folder records the whole plan (every unit's hash, in order) and holds
the shards of its part. `merge` checks that every folder ran the same plan (same suite, options
and harness source), takes each unit's shard from whichever folder has it, and writes one run
folder whose tables are the shards' rows in plan order: identical to one run of the whole plan.
A unit that two folders both ran must have the same rows there (timings aside); otherwise the
merge stops with both places named, rather than keep one silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness.base import environment, runfolder, schema
from harness.base.shards import Shard, ShardStore, canonical
from harness.conformance.writer import RunWriter
from reference.errors import InputValueError


class MergeError(InputValueError):
    """Folders that cannot be merged (another plan, a conflicting duplicate); one line."""


@dataclass
class MergeResult:
    out: Path
    tables: dict[str, pd.DataFrame]
    env: dict[str, Any]
    missing: int  # units of the plan no folder had

    @property
    def exit_code(self) -> int:
        """1 when a unit is missing or a row does not pass; 0 otherwise."""
        summary = self.tables.get("summary", pd.DataFrame(columns=schema.SUMMARY))
        failed = any(line for line in self.env.get("training_failed", []))
        return 1 if self.missing or (~summary["status"].isin(schema.PASSING)).any() or failed else 0


def _plan(folder: Path) -> tuple[dict[str, Any], list[str]]:
    loaded = runfolder.load(folder, tables=())
    plan = loaded.env.get("plan")
    if loaded.kind != "conformance" or not isinstance(plan, dict) or not isinstance(plan.get("units"), list):
        raise MergeError(f"{folder}: not a conformance run folder of this harness version (no plan in env.json)")
    return loaded.env, [str(h) for h in plan["units"]]


def merge(sources: list[str | Path], out: str | Path) -> MergeResult:
    """Merge ``sources`` (run folders of one plan) into ``out`` (see the module docstring)."""
    if not sources:
        raise MergeError("merge: name the run folders to merge")
    folders = [runfolder.check_path(s, "run folder") for s in sources]
    target = runfolder.check_path(out, "--out")
    for f in folders:
        if f.resolve() == target.resolve():
            raise MergeError(f"--out {out}: is one of the folders being merged; pass a new folder")
    if len({f.resolve() for f in folders}) != len(folders):
        raise MergeError("merge: a folder is named twice")
    first_env, units = _plan(folders[0])
    envs = [first_env]
    for f in folders[1:]:
        env, other = _plan(f)
        if other != units:
            what = "another suite" if env.get("suite", {}).get("sha256") != first_env.get("suite", {}).get("sha256") \
                else "another plan (other options, or another harness version)"
            raise MergeError(f"{f}: ran {what} than {folders[0]}; only parts of one plan merge")
        envs.append(env)
    order = {h: i for i, h in enumerate(units)}
    chosen: dict[str, tuple[Shard, Path]] = {}
    for f in folders:
        for shard in ShardStore(f, create=False):
            if shard.hash not in order or shard.order != order[shard.hash]:
                continue  # a shard of an earlier, other plan left in the folder: not this run's
            if shard.hash in chosen:
                kept, where = chosen[shard.hash]
                if not kept.same_result(shard):
                    raise MergeError(f"task {_describe(shard)} ran in {where} and in {f} with different results; "
                                     "rerun one of them (merge never picks one silently)")
                continue
            chosen[shard.hash] = (shard, f)
    writer = RunWriter(runfolder.prepare_output(target), len(units))
    store = ShardStore(writer.out)
    store.prune(set(chosen))  # the folder holds exactly the shards its tables are made of
    env = {key: value for key, value in first_env.items() if key not in ("workers", "fingerprint", "resumed")}
    env["plan"] = {**first_env["plan"], "shard": "merged", "selected": len(units)}
    env["merged"] = [{"folder": str(f), "shard": e.get("plan", {}).get("shard"), "cpu": e.get("cpu"),
                      "finished": e.get("finished"), "wall_seconds": e.get("wall_seconds"),
                      "complete": e.get("complete"), "fingerprint": (e.get("fingerprint") or {}).get("digest")}
                     for f, e in zip(folders, envs, strict=True)]
    hellos: dict[bytes, dict] = {}  # each worker's hello once (every shard of its group carries it)
    try:
        for shard, _ in sorted(chosen.values(), key=lambda item: item[0].order):
            store.write(shard)
            writer.add(shard.roundtrip())
            env.update(shard.env)
            for hello in shard.hellos:
                hellos.setdefault(canonical(hello), hello)
        missing = len(units) - len(chosen)
        environment.finish(env, list(hellos.values()), 0.0)
        env["wall_seconds"] = max((e.get("wall_seconds") or 0.0 for e in envs), default=0.0)
        env["complete"] = not missing
        env["missing"] = missing
        writer.publish(env, complete=not missing)
    finally:
        writer.close()
    return MergeResult(writer.out, writer.tables(), env, missing)


def _describe(shard: Shard) -> str:
    spec = shard.spec
    if spec.get("kind") == "conformance":
        env = spec.get("environment", {}).get("name", "default")
        return f"{spec.get('case')} {spec.get('adapter')}{'' if env == 'default' else '@' + env} " \
               f"{spec.get('device')} {spec.get('dtype')}"
    return f"{spec.get('kind')} of suite {spec.get('suite')}"


__all__ = ["MergeError", "MergeResult", "merge"]
