"""The package's imports run one way: no cycles, and the lower layers never reach up.

Read from the source (every import, lazy ones inside functions included), so a cycle
that only shows at run time on some path is caught here too."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "wyoming_verba"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(name: str) -> set[str]:
    """The package modules `name` imports (a package means its __init__)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:  # `import a.b.c` names a module of it
                target = target.rpartition(".")[0]
            # A package's modules importing their own __init__ is how Python loads them.
            if target and target != name and not name.startswith(target + "."):
                found.add(target)
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def find_cycle() -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(GRAPH):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def reachable(start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in GRAPH[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_the_reader_sees_the_imports() -> None:
    assert "wyoming_verba.app" in GRAPH["wyoming_verba.handler"]
    assert "wyoming_verba.backends.base" in GRAPH["wyoming_verba.backends.edge.backend"]
    assert "wyoming_verba.backends.edge.voices" in GRAPH["wyoming_verba.backends.edge.backend"]
    # a lazy import inside a function counts
    assert "wyoming_verba.server" in GRAPH["wyoming_verba.__main__"]


def test_no_import_cycle() -> None:
    assert find_cycle() is None, " → ".join(find_cycle() or [])


def test_lower_layers_never_reach_up() -> None:
    front = {"wyoming_verba.server", "wyoming_verba.handler", "wyoming_verba.reply",
             "wyoming_verba.__main__"}
    assert not reachable("wyoming_verba.app") & front
    assert GRAPH["wyoming_verba.pcm"] <= {"wyoming_verba"}  # the bottom layer
    for name in MODULES:
        if name.startswith("wyoming_verba.backends."):
            assert not reachable(name) & (front | {"wyoming_verba.app"}), name


def test_only_the_factory_and_the_chain_know_every_engine() -> None:
    engines = {"csm", "edge", "piper", "espeak", "remote"}
    for name, imported in GRAPH.items():
        known = {m.split(".")[2] for m in imported
                 if m.startswith("wyoming_verba.backends.") and m.split(".")[2] in engines}
        own = name.split(".")[2] if name.startswith("wyoming_verba.backends.") else ""
        assert known <= {own}, f"{name} imports the engines {sorted(known - {own})}"


def test_the_http_front_sits_beside_wyoming() -> None:
    """http/ speaks through reply.Reply on the App and may use the plumbing below it;
    nothing below it, and no Wyoming connection code, imports it (only the server,
    which starts it)."""
    http = {name for name in MODULES if name.startswith("wyoming_verba.http")}
    assert "wyoming_verba.reply" in GRAPH["wyoming_verba.http.speech"]
    for name in MODULES:
        if name in http or name in ("wyoming_verba.server", "wyoming_verba.__main__"):
            continue
        assert not GRAPH[name] & http, f"{name} imports the HTTP front"
    for name in http:
        assert not reachable(name) & {"wyoming_verba.server", "wyoming_verba.handler",
                                      "wyoming_verba.wire", "wyoming_verba.__main__"}, name
