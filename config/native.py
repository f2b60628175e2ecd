"""The compiled hot path: the detectors and the worker's decoding, merging and applying, built
with mypyc from the same Python sources.

Compiling is optional and changes no result: the sources stay the one truth, and a test replays
the same events both ways and compares every alert, labelled example and state byte for byte.
It removes most of the interpreter's cost per event (``ews bench``: the ``pipeline-py`` mode runs
the same worker interpreted, for comparison).

``make native`` (which ``make test`` and ``make demo`` run) builds :data:`COMPILED` into
``.native/`` beside the packages, with a manifest of the sources it was built from. When
``detectors`` and ``streams`` are imported they put ``.native/<package>`` first on their
``__path__``, but only if every listed source still matches the manifest: the compiled modules
call each other natively, so they are used all together or not at all, and an edited source
turns them all off until the next build. ``EWS_NATIVE=0`` turns them off as well.

Left interpreted: the packages' ``__init__`` files (they decide what loads) and everything that
talks to Faust, Kafka or Redis.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
NATIVE_DIR = ROOT / ".native"
MANIFEST = "manifest.json"
COMPILED = (
    "detectors/alert.py",
    "detectors/base.py",
    "detectors/calibration.py",
    "detectors/conduct.py",
    "detectors/engine.py",
    "detectors/events.py",
    "detectors/inflow.py",
    "detectors/labels.py",
    "detectors/levels.py",
    "detectors/means.py",
    "detectors/model.py",
    "detectors/repayment.py",
    "detectors/scorecard.py",
    "detectors/state.py",
    "detectors/stats.py",
    "detectors/transactions.py",
    "streams/applier.py",
    "streams/merge.py",
    "streams/records.py",
    "streams/replay.py",
)
PACKAGES = tuple(sorted({path.split("/")[0] for path in COMPILED}))


MYPY_CONFIG = """\
[mypy]
ignore_missing_imports = True

[mypy-numpy.*,narwhals.*,pandas.*,scipy.*]
follow_imports = skip
"""
"""mypy's settings for the build. The numerical stack under River is left unanalysed (its types
are Any to the compiled code, which never handles them): analysing it the way mypyc does took
minutes. River itself is analysed: two signals' classes subclass its ``Univariate``, and mypyc
must know that base to lay them out."""


def fingerprint(root: Path = ROOT) -> dict[str, Any]:
    """What a build depends on: the interpreter's ABI tag and each compiled source's digest."""
    sources = {path: hashlib.sha256((root / path).read_bytes()).hexdigest() for path in COMPILED}
    return {"python": sys.implementation.cache_tag, "sources": sources}


def is_fresh(native_dir: Path = NATIVE_DIR, root: Path = ROOT) -> bool:
    """True when ``native_dir`` holds a build of exactly the current sources."""
    try:
        manifest = orjson.loads((native_dir / MANIFEST).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return False
    return isinstance(manifest, dict) and manifest.get("built_from") == fingerprint(root)


@functools.cache
def enabled() -> bool:
    """Whether this process loads the compiled modules (decided once, at first import)."""
    return os.environ.get("EWS_NATIVE", "1") != "0" and is_fresh()


def activate(package_path: list[str], package: str) -> None:
    """Called by ``package``'s ``__init__``: look in the compiled build first, when enabled."""
    if enabled():
        package_path.insert(0, str(NATIVE_DIR / package))


def loaded() -> bool:
    """Whether the compiled modules are the ones running (the engine stands for them all)."""
    import detectors.engine

    return not (detectors.engine.__file__ or "").endswith(".py")


def build(native_dir: Path = NATIVE_DIR, root: Path = ROOT) -> None:
    """Compile :data:`COMPILED` with mypyc (needs mypy, setuptools and a C compiler) and replace
    ``native_dir`` with the result; the manifest is written last."""
    # Imported by name, so that the build's mypy, which analyses this module with the compiled
    # ones (the packages' __init__ import it), does not analyse mypy and setuptools as well.
    mypycify = importlib.import_module("mypyc.build").mypycify
    setup = importlib.import_module("setuptools").setup

    work = Path(tempfile.mkdtemp(prefix="ews-native-"))
    previous = Path.cwd()
    try:
        # From an empty directory, by absolute paths: mypy names each module by the packages
        # above it and finds nothing else to mistake for a module (in site-packages it would),
        # and setuptools finds no pyproject.toml of ours to apply.
        os.chdir(work)
        (work / "mypy.ini").write_text(MYPY_CONFIG)
        try:
            modules = mypycify(
                ["--config-file", "mypy.ini", *(str(root / path) for path in COMPILED)],
                opt_level="2",
                debug_level="0",
                separate=True,
                target_dir=str(work / "c"),
            )
            setup(
                name="ews-native",
                packages=[],
                ext_modules=modules,
                script_args=[
                    "--quiet",
                    "build_ext",
                    f"--build-lib={work / 'lib'}",
                    f"--build-temp={work / 'tmp'}",
                    f"--parallel={os.cpu_count() or 1}",
                ],
            )
        finally:
            os.chdir(previous)
        built = work / "lib"
        stray = sorted(p.name for p in built.iterdir() if p.name not in PACKAGES)
        if stray:
            raise RuntimeError(f"mypyc built modules outside {PACKAGES}: {stray}")
        staged = native_dir.with_name(native_dir.name + ".new")
        shutil.rmtree(staged, ignore_errors=True)
        shutil.copytree(built, staged)
        (staged / MANIFEST).write_bytes(orjson.dumps({"built_from": fingerprint(root)}))
        shutil.rmtree(native_dir, ignore_errors=True)
        staged.rename(native_dir)  # a process starting now sees the old build or the new one
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str]) -> int:
    """``python -m config.native [--force]``: build unless the build is fresh."""
    if "--force" not in argv and is_fresh():
        print(f"compiled hot path up to date in {NATIVE_DIR}")
        return 0
    build()
    print(f"compiled {len(COMPILED)} modules into {NATIVE_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
