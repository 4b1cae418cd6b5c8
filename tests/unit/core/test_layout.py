"""The layout rules the code keeps: no import circles (lazy imports count), no private names across modules,
engine libraries only in their adapters.

Read from the source with ``ast``, so the check needs none of the libraries installed and sees imports inside
functions as well as at module level.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("flywheel", "flows")
# engine library -> the modules (or packages, with a trailing dot) allowed to import it
ADAPTERS = {
    "ray": ("flywheel.engines.", "flywheel.ops.submit"),  # submit: the Ray job client
    "vllm": ("flywheel.engines.",),
    "deepspeed": ("flywheel.engines.",),
    "prefect": ("flows.", "flywheel.ops."),
    "mlflow": ("flywheel.tracking", "flywheel.ops.compare"),  # compare reads the rounds back
}


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _imports(path: Path, modules: dict[str, Path]) -> list[tuple[str, list[str]]]:
    """(imported module, names taken from it) for every import statement, module-level or lazy."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:  # `from pkg import mod` imports the submodule pkg.mod
                sub = f"{node.module}.{alias.name}"
                found.append((sub, []) if sub in modules else (node.module, [alias.name]))
    return found


def _graph() -> tuple[dict[str, set[str]], list[str], list[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    private, heavy = [], []
    for mod, path in modules.items():
        for target, names in _imports(path, modules):
            top = target.split(".")[0]
            if top in ADAPTERS and not any(mod == a or mod.startswith(a) for a in ADAPTERS[top]):
                heavy.append(f"{mod} imports {target}")
            if target in modules and target != mod:
                graph[mod].add(target)
                private += [f"{mod} uses {target}.{n}" for n in names if n.startswith("_") and not n.startswith("__")]
    return graph, private, heavy


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circles():
    graph, _, _ = _graph()
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_private_names_across_modules():
    _, private, _ = _graph()
    assert private == []


def test_engine_libraries_only_in_their_adapters():
    _, _, heavy = _graph()
    assert heavy == []


def test_every_stage_has_its_own_module():
    from flywheel.rounds import STAGES

    stage_files = {p.stem for p in (ROOT / "flywheel" / "stages").glob("*.py")}
    renamed = {"train": "training"}
    assert [s for s in STAGES if renamed.get(s, s) not in stage_files] == []
