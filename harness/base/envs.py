"""Named environments: a package set the adapters run in, side by side with the harness's own.

``[environments.optax-0.1.7] packages = ["optax==0.1.7"]`` in a suite, or ``--env optax==0.1.7``,
names an environment. The harness creates it once and caches it under the cache directory
(``$RMSPROP_HARNESS_ENV_CACHE``, else ``~/.cache/rmsprop-harness/envs``), one folder per package
set, named by its digest:

* a virtual environment of the harness's own Python, without pip (uv's ``uv venv`` when ``uv`` is
  on the PATH, else the standard library's ``venv``);
* a ``.pth`` file that puts the harness's own ``site-packages`` *after* the environment's: the
  named packages shadow the harness's copies, everything else (numpy, the other frameworks, the
  harness's dependencies) is shared, so an environment costs the named packages only;
* the packages installed into it (``uv pip install --python`` or ``pip --python``), their missing
  dependencies with them;
* ``environment.json``, written last: the package set and every distribution the environment's
  Python sees, with its version (its own installs first, the harness's where a pin was already met
  there). A folder without it is an interrupted creation and is made again.

Creation happens in a temporary folder renamed into place, under a lock, so two runs (or two Ray
tasks on one node) never build the same environment twice or see half of one.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import site
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from reference.errors import InputValueError

DEFAULT = "default"
CACHE_ENV = "RMSPROP_HARNESS_ENV_CACHE"
RECORD = "environment.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,79}$")
_REQUIREMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-\[\],]*\s*"  # a name, then version clauses
                          r"(?:(?:==|>=|<=|~=|!=|<|>)\s*[A-Za-z0-9_.*+!-]+\s*,?\s*)*$")


class EnvSpecError(InputValueError):
    """A named environment that cannot be declared or created as asked; one line."""


@dataclass(frozen=True, kw_only=True)
class Environment:
    """A named package set (see the module docstring); ``adapters`` empty: the adapters whose
    implementation uses a package named in ``packages``."""

    name: str
    packages: tuple[str, ...]
    adapters: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _NAME.match(self.name) or self.name == DEFAULT:
            raise EnvSpecError(f"environment name {self.name!r}: use letters, digits and . _ + - (not "
                                    f"{DEFAULT!r}, the harness's own)")
        if not self.packages:
            raise EnvSpecError(f"environment {self.name!r}: no packages (give packages = [\"optax==0.1.7\"])")
        for p in self.packages:
            if not isinstance(p, str) or not _REQUIREMENT.match(p.strip()) or p.strip().startswith("-"):
                raise EnvSpecError(f"environment {self.name!r}: {p!r} is not a requirement like optax==0.1.7 "
                                        "(options, URLs and paths are not accepted)")

    @classmethod
    def from_spec(cls, text: str) -> Environment:
        """``--env optax==0.1.7[,jax==0.4.30]``: named after its packages (``optax-0.1.7``)."""
        packages = tuple(p.strip() for p in text.split("+") if p.strip())
        if not packages:
            raise EnvSpecError(f"--env {text!r}: give packages, e.g. --env optax==0.1.7 (join several with +)")
        name = "+".join(re.sub(r"[=<>~!]=?", "-", p).replace("--", "-") for p in packages)
        return cls(name=re.sub(r"[^A-Za-z0-9_.+-]", "_", name)[:80], packages=packages)

    @property
    def distributions(self) -> tuple[str, ...]:
        """The distribution names it pins (normalised: ``optax``, ``keras``)."""
        return tuple(normalise(re.split(r"[\s=<>~!\[]", p.strip(), maxsplit=1)[0]) for p in self.packages)

    @property
    def digest(self) -> str:
        """What the cached folder is named by: the package set and the Python it runs on."""
        text = json.dumps({"packages": sorted(self.packages), "python": sys.version.split()[0],
                           "base": str(_base_site())}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def identity(self) -> dict[str, object]:
        """What a task's spec records of its environment."""
        return {"name": self.name, "packages": sorted(self.packages)}


def normalise(name: str) -> str:
    """A distribution name as pip compares them (``tf_keras`` = ``tf-keras``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _base_site() -> Path:
    """The harness's own site-packages (the environment's fallback)."""
    paths = [Path(p) for p in site.getsitepackages() if Path(p).is_dir()]
    return paths[0] if paths else Path(sys.prefix)


def cache_dir() -> Path:
    root = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "rmsprop-harness", "envs")
    return Path(root)


def location(env: Environment) -> Path:
    return cache_dir() / f"{env.name}-{env.digest}"


def installed(folder: Path) -> dict[str, str] | None:
    """What a created environment holds (its ``environment.json``), or None when it is not complete."""
    record = folder / RECORD
    if record.is_symlink() or not record.is_file():
        return None
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data.get("installed") if isinstance(data, dict) and isinstance(data.get("installed"), dict) else None


def ensure(env: Environment, log=None) -> Path:
    """The Python interpreter of ``env``, creating and caching the environment first if needed."""
    folder = location(env)
    python = folder / "bin" / "python"
    if installed(folder) is not None:
        return python
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    if root.is_symlink():
        raise EnvSpecError(f"{root}: the environment cache is a symlink; refusing to build through it")
    with open(root / f".{folder.name}.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder per environment; the others wait and reuse it
        if installed(folder) is not None:
            return python
        shutil.rmtree(folder, ignore_errors=True)  # an interrupted creation
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=root))
        try:
            _create(env, tmp, log)
            os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return python


def _run(command: list[str], what: str) -> None:
    proc = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        lines = [line for line in (proc.stderr or proc.stdout).splitlines() if line.strip()
                 and not line.startswith("WARNING: Location")]
        raise EnvSpecError(f"{what} failed: {lines[-1][:300] if lines else f'exit {proc.returncode}'}")


def _create(env: Environment, folder: Path, log) -> None:
    uv = shutil.which("uv")
    base_python = getattr(sys, "_base_executable", sys.executable)
    if log:
        log(f"creating environment {env.name} ({', '.join(env.packages)}) with {'uv' if uv else 'venv + pip'} ...")
    if uv:
        _run([uv, "venv", "--quiet", "--python", base_python, str(folder)], f"environment {env.name}: uv venv")
    else:
        _run([base_python, "-m", "venv", "--without-pip", str(folder)], f"environment {env.name}: venv")
    python = folder / "bin" / "python"
    own = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"], capture_output=True,
                         text=True, check=True).stdout.strip()
    # after the environment's own site-packages: its packages shadow the harness's, the rest is shared
    Path(own, "rmsprop_harness_base.pth").write_text(f"{_base_site()}\n", encoding="utf-8")
    if uv:
        command = [uv, "pip", "install", "--quiet", "--python", str(python), *env.packages]
    else:
        command = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                   "--disable-pip-version-check", *env.packages]
    _run(command, f"environment {env.name}: installing {' '.join(env.packages)}")
    # what the environment's Python sees: its own installs first, the harness's where a pin was already met there
    probe = ("import json, sys, importlib.metadata as m\n"
             "out = {}\n"
             "for d in m.distributions():\n"
             "    out.setdefault(d.metadata['Name'], d.version)\n"
             "json.dump(out, sys.stdout)")
    seen = json.loads(subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=True).stdout)
    dists = {normalise(name): version for name, version in seen.items() if name}
    missing = [d for d in env.distributions if d not in dists]
    if missing:
        raise EnvSpecError(f"environment {env.name}: {', '.join(missing)} did not install into it")
    record = {"name": env.name, "packages": list(env.packages), "installed": dict(sorted(dists.items())),
              "python": sys.version.split()[0], "base": str(_base_site()), "tool": "uv" if uv else "pip"}
    (folder / RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def versions(env: Environment) -> dict[str, str]:
    """The versions the environment pins, as installed (empty before it is created)."""
    held = installed(location(env)) or {}
    return {d: held[d] for d in env.distributions if d in held}


def parse_tables(tables: object) -> tuple[Environment, ...]:
    """A suite's ``[environments]`` table of tables."""
    if not isinstance(tables, dict):
        raise EnvSpecError("environments: expected [environments.NAME] tables")
    return tuple(parse_table(name, table) for name, table in tables.items())


def parse_table(name: str, table: object) -> Environment:
    """One ``[environments.NAME]`` table of a suite."""
    if not isinstance(table, dict):
        raise EnvSpecError(f"[environments.{name}]: not a table")
    unknown = sorted(set(table) - {"packages", "adapters", "description"})
    if unknown:
        raise EnvSpecError(f"[environments.{name}]: unknown key {unknown[0]!r} (packages, adapters, description)")
    packages, adapters = table.get("packages"), table.get("adapters", [])
    if not isinstance(packages, list) or not all(isinstance(p, str) for p in packages):
        raise EnvSpecError(f"[environments.{name}]: packages must be a list of requirements like "
                                "\"optax==0.1.7\"")
    if not isinstance(adapters, list) or not all(isinstance(a, str) for a in adapters):
        raise EnvSpecError(f"[environments.{name}]: adapters must be a list of adapter names")
    return Environment(name=name, packages=tuple(packages), adapters=tuple(adapters))


__all__ = [
    "CACHE_ENV",
    "DEFAULT",
    "EnvSpecError",
    "Environment",
    "cache_dir",
    "ensure",
    "installed",
    "location",
    "normalise",
    "parse_table",
    "parse_tables",
    "versions",
]
