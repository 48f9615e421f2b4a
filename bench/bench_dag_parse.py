"""dag_parse: parse time of every DAG file in dags/, measured the way Airflow's dag-processor does.

The dag-processor (Airflow 3.3, ``airflow/dag_processing/processor.py``) keeps Airflow imported in its
manager, pre-imports the ``airflow.*`` modules a file names (``parsing_pre_import_modules``), then
starts a fresh child per file that runs the stability check, parses the file with a ``DagBag`` and
serializes its DAGs; the file's ``last_duration`` is that child's run time. Here every measurement is
a fresh ``python -X importtime`` process that imports Airflow and the processor module and pre-imports
the file's ``airflow.*`` imports (untimed, as the manager has them), then times exactly the child's
work: ``check_dag_file_stability`` + ``DagBag(file)`` + ``DagSerialization.to_dict`` per DAG. The
figure is the median of ``SP_BENCH_PARSE_RUNS`` (3) runs per file; target under 0.5 s each.

Heavy module-level imports: the imports the parse triggers (what ``-X importtime`` logs after the
timer starts, at the outermost level: the DAG file's own imports and what they pull in) are listed per
file with their cumulative time; one of ``HEAVY_MS`` (100 ms) or more is flagged, and so is a
third-party package (not the standard library, Airflow or this project) that costs as much.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import result

NAME = "dag_parse"
ROOT = Path(__file__).resolve().parents[1]
DAGS = ROOT / "dags"
RUNS = int(os.environ.get("SP_BENCH_PARSE_RUNS", "3"))
TARGET_SECONDS = 0.5
HEAVY_MS = 100.0
MARKER = "##sp-bench-parse-start##"
#: Top-level packages that are not third-party dependencies.
OWN = ("airflow", "selling_partner", "sp_api_sandbox", "bench", "unusual_prefix")


def parse_importtime(stderr: str, marker: str = MARKER) -> list[tuple[int, str, float]]:
    """``(level, module, cumulative ms)`` of every import ``-X importtime`` logged after ``marker``
    (level 0 = outermost). Lines look like ``import time:   self |  cumulative | <2 spaces a level>name``."""
    _, found, tail = stderr.partition(marker)
    entries: list[tuple[int, str, float]] = []
    for line in tail.splitlines() if found else ():
        parts = line.split("|")
        if not line.startswith("import time:") or len(parts) != 3:
            continue
        try:
            cumulative_us = float(parts[1])
        except ValueError:  # the header line
            continue
        indent = len(parts[2]) - len(parts[2].lstrip())
        entries.append((indent, parts[2].strip(), cumulative_us / 1000.0))
    top = min((indent for indent, _, _ in entries), default=0)
    return [((indent - top) // 2, name, ms) for indent, name, ms in entries]


def outermost(entries: list[tuple[int, str, float]]) -> list[tuple[str, float]]:
    """The outermost imports (the DAG file's own, and DagBag's), heaviest first."""
    return sorted(((n, ms) for level, n, ms in entries if level == 0), key=lambda e: e[1], reverse=True)


def third_party(entries: list[tuple[int, str, float]], own: tuple[str, ...] = OWN) -> list[tuple[str, float]]:
    """Packages outside the standard library, Airflow and this project that the parse imported, with
    the cumulative ms of their outermost import, heaviest first."""
    found: dict[str, float] = {}
    for _level, name, ms in entries:
        root = name.split(".")[0]
        if root in sys.stdlib_module_names or root in own or root.startswith("_"):
            continue
        found[root] = max(found.get(root, 0.0), ms)
    return sorted(found.items(), key=lambda e: e[1], reverse=True)


def heavy(imports: list[tuple[str, float]], threshold_ms: float = HEAVY_MS) -> list[dict[str, Any]]:
    """The imports at or above ``threshold_ms``, as result records."""
    return [{"module": name, "ms": round(ms, 1)} for name, ms in imports if ms >= threshold_ms]


def _child(path: str) -> None:
    """One measurement, run in a fresh process: prints a JSON line with the seconds and the DAG ids."""
    import importlib
    import time

    # The manager has Airflow and the processor imported before it starts a child.
    import airflow.dag_processing.processor  # noqa: F401
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils.dag_version_inflation_checker import check_dag_file_stability
    from airflow.utils.file import iter_airflow_imports

    for module in iter_airflow_imports(path):  # parsing_pre_import_modules, in the manager
        with contextlib.suppress(Exception):  # the processor only logs a warning too
            importlib.import_module(module)
    print(MARKER, file=sys.stderr, flush=True)
    started = time.perf_counter()
    check_dag_file_stability(path)
    bag = DagBag(dag_folder=path, load_op_links=False)
    for dag in bag.dags.values():
        DagSerialization.to_dict(dag)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "dags": sorted(bag.dags), "import_errors": bag.import_errors}))


def measure_once(path: Path, home: str) -> dict[str, Any]:
    """Run one fresh child for ``path``; returns its seconds, DAG ids and outermost imports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=home,
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        PYTHONPATH=os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "include"), str(ROOT)]),
    )
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bench.bench_dag_parse", "--child", str(path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
        timeout=300,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"parsing {path.name} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    out = json.loads(lines[-1])
    if out["import_errors"] or not out["dags"]:
        raise RuntimeError(f"{path.name}: import errors {out['import_errors']} dags {out['dags']}")
    entries = parse_importtime(proc.stderr)
    out["imports"], out["third_party"] = outermost(entries), third_party(entries)
    return out


def run() -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="sp-bench-parse-") as home:
        for path in sorted(DAGS.glob("*.py")):
            if path.name.startswith("_"):
                continue
            runs = [measure_once(path, home) for _ in range(RUNS)]
            seconds = [r["seconds"] for r in runs]
            # Import costs vary with the box's load: keep the run whose time is the median's.
            median_run = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
            rows.append(
                result(
                    f"{NAME}.{path.stem}",
                    statistics.median(seconds),
                    "s",
                    target=TARGET_SECONDS,
                    higher_is_better=False,
                    runs_s=[round(s, 3) for s in seconds],
                    dags=runs[0]["dags"],
                    top_imports=[{"module": m, "ms": round(ms, 1)} for m, ms in median_run["imports"][:5]],
                    heavy_imports=heavy(median_run["imports"]),
                    top_third_party=[
                        {"module": m, "ms": round(ms, 1)} for m, ms in median_run["third_party"][:3]
                    ],
                    heavy_third_party=heavy(median_run["third_party"]),
                    loadavg_1m=round(os.getloadavg()[0], 2),
                )
            )
    return rows


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        _child(sys.argv[2])
    else:
        print(json.dumps(run(), indent=2))
