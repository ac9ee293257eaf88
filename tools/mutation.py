"""Mutation testing of the request path: do the tests notice when the code changes?

    python -m tools.mutation                    # every module in pyproject.toml
    python -m tools.mutation text wire          # some of them
    python -m tools.mutation text --fresh       # forget cached verdicts first
    python -m tools.mutation text --survivors   # print each survivor's diff

Runs mutmut (the `test` extra) once per group in `[tool.verba-mutation.groups]` of
pyproject.toml, each in its own working directory under `.mutation/<group>/` with only that
group's files mutated and only its test files selected (`[tool.mutmut]` holds what the
groups share). mutmut then runs, for each mutant, only the selected tests that reach the
mutated function.

Prints killed / survived / equivalent and the score per file: killed / (all − equivalent).
Equivalent mutants (no input can tell them from the original) are listed one by one, each
with the line it changes and a one-line reason, in `mutation-equivalents.toml` beside
pyproject.toml; an entry that no longer matches its mutant, or whose mutant is now killed,
is an error. Exits 1 when a file scores below `min_score` or an entry is stale.

mutmut keeps a killed verdict until the mutated function changes; survivors are always
checked again, so a new test counts at the next run. Not in CI: a full run takes a while
(README, "Development")."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
EQUIVALENTS = ROOT / "mutation-equivalents.toml"
WORK = ROOT / ".mutation"
LINKED = ("wyoming_verba", "tests")  # what each working directory sees of the checkout

KILLED = {"killed", "timeout", "caught by type check"}
SURVIVED = {"survived", "no tests", "suspicious", "skipped", "segfault"}


@dataclass
class Group:
    name: str
    mutate: list[str]
    tests: list[str]


@dataclass
class Equivalent:
    name: str
    line: str  # the mutated line, as mutmut's diff shows it after "+"
    reason: str


@dataclass
class FileScore:
    path: str
    killed: int = 0
    survived: list[str] = field(default_factory=list)
    equivalent: int = 0
    unchecked: int = 0

    @property
    def score(self) -> float:
        counted = self.killed + len(self.survived)
        return 100.0 if counted == 0 else 100.0 * self.killed / counted


def load_config() -> tuple[dict, list[Group], float]:
    tool = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]
    own = tool["verba-mutation"]
    groups = [Group(name, g["mutate"], g["tests"]) for name, g in own["groups"].items()]
    base = dict(tool["mutmut"])
    if "test_timeout" in own:  # pytest-timeout's per-test limit, for the mutants' runs
        base["pytest_add_cli_args"] = [*base.get("pytest_add_cli_args", []),
                                       f"--timeout={own['test_timeout']}"]
    return base, groups, float(own.get("min_score", 90))


def load_equivalents() -> dict[str, Equivalent]:
    if not EQUIVALENTS.exists():
        return {}
    entries = tomllib.loads(EQUIVALENTS.read_text(encoding="utf-8")).get("mutant", [])
    out: dict[str, Equivalent] = {}
    for e in entries:
        if not e.get("reason", "").strip():
            raise SystemExit(f"{EQUIVALENTS.name}: {e.get('name')} has no reason")
        out[e["name"]] = Equivalent(e["name"], e["line"].strip(), e["reason"])
    return out


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"unsupported [tool.mutmut] value: {value!r}")


def _pyproject_for(group: Group, base: dict) -> str:
    """The checkout's pyproject.toml (pytest settings and all) with a [tool.mutmut] table
    narrowed to the group: mutmut reads its configuration from the working directory."""
    text = PYPROJECT.read_text(encoding="utf-8")
    text = re.sub(r"(?ms)^\[tool\.(mutmut|verba-mutation)[^\n]*\n.*?(?=^\[|\Z)", "", text)
    settings = dict(base)
    settings["only_mutate"] = group.mutate
    settings["pytest_add_cli_args_test_selection"] = group.tests
    # A mutant that mypy rejects (None for a bool, a dropped argument) would fail the
    # suite's type check (tests/test_types.py): mutmut counts it as caught.
    settings["type_check_command"] = ["mypy", "--output", "json", "--no-warn-unused-ignores",
                                      *group.mutate]
    table = "\n".join(f"{k} = {_toml_value(v)}" for k, v in settings.items())
    return f"{text.rstrip()}\n\n[tool.mutmut]\n{table}\n"


def prepare(group: Group, base: dict, fresh: bool) -> Path:
    work = WORK / group.name
    if fresh and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    for name in LINKED:
        link = work / name
        if not link.is_symlink():
            link.symlink_to(ROOT / name, target_is_directory=True)
    (work / "pyproject.toml").write_text(_pyproject_for(group, base), encoding="utf-8")
    mutants = work / "mutants"
    if mutants.exists():
        # mutmut copies tests/ only when it creates a mutant tree; new tests must reach it.
        shutil.copytree(ROOT / "tests", mutants / "tests", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
    return work


def _mutmut(work: Path, args: list[str]) -> None:
    mutmut = Path(sys.executable).with_name("mutmut")
    command = [str(mutmut) if mutmut.exists() else "mutmut", *args]
    shown = " ".join(args) if len(args) <= 4 else " ".join(args[:3]) + f" <{len(args) - 3} mutants>"
    print(f"  $ (cd {work.relative_to(ROOT)} && mutmut {shown})", flush=True)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run(command, cwd=work, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        print(result.stdout[-6000:])
        raise SystemExit(f"mutmut {args[0]} failed in {work} (exit {result.returncode})")
    for line in result.stdout.splitlines()[-3:]:
        print(f"    {line.strip()[-150:]}")


def _results(work: Path, with_diffs: set[str] | None = None) -> dict[str, dict]:
    """{mutant: {"path", "status", "diff"?}} read through mutmut's own API, in `work`."""
    code = (
        "import json, sys\n"
        "from mutmut.mutation.data import SourceFileMutationData\n"
        "from mutmut.mutation.diff_apply import get_diff_for_mutant\n"
        "from mutmut.stats import status_by_exit_code\n"
        "from mutmut.utils.file_utils import walk_mutatable_files\n"
        "want = json.loads(sys.argv[1])\n"
        "out = {}\n"
        "for path in walk_mutatable_files():\n"
        "    m = SourceFileMutationData(path=path)\n"
        "    m.load()\n"
        "    for key, code in m.exit_code_by_key.items():\n"
        "        r = {'path': str(path), 'status': status_by_exit_code[code]}\n"
        "        if want is None or key in want:\n"
        "            r['diff'] = get_diff_for_mutant(key, path=path)\n"
        "        out[key] = r\n"
        "print(json.dumps(out))\n"
    )
    want = None if with_diffs is None else sorted(with_diffs)
    result = subprocess.run([sys.executable, "-c", code, json.dumps(want)], cwd=work,
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def _added_lines(diff: str) -> list[str]:
    return [ln[1:].strip() for ln in diff.splitlines()
            if ln.startswith("+") and not ln.startswith("+++")]


def run_group(group: Group, base: dict, equivalents: dict[str, Equivalent],
              max_children: int, fresh: bool, show: bool) -> tuple[list[FileScore], list[str]]:
    print(f"== {group.name}: {', '.join(group.mutate)}  (tests: {' '.join(group.tests)})",
          flush=True)
    work = prepare(group, base, fresh)
    before = _results(work, set()) if (work / "mutants").exists() else {}
    _mutmut(work, ["run", "--max-children", str(max_children)])
    again = sorted(k for k, r in _results(work, set()).items()
                   if r["status"] in SURVIVED and before.get(k, {}).get("status") in SURVIVED)
    if again:  # cached survivors: new tests may kill them now
        print(f"  re-checking {len(again)} survivors of the last run", flush=True)
        _mutmut(work, ["run", "--max-children", str(max_children), *again])
    status = _results(work, set())
    survivors = {k for k, r in status.items() if r["status"] in SURVIVED}
    mine = {k for k in equivalents if k in status}
    results = _results(work, survivors | mine)

    problems: list[str] = []
    scores: dict[str, FileScore] = {p: FileScore(p) for p in group.mutate}
    for key, r in sorted(results.items()):
        score = scores.setdefault(r["path"], FileScore(r["path"]))
        eq = equivalents.get(key)
        if eq is not None:
            if eq.line not in _added_lines(r.get("diff", "")):
                problems.append(f"{key}: the equivalents entry no longer matches its mutant "
                                f"(expected the line {eq.line!r})")
            elif r["status"] in KILLED:
                problems.append(f"{key}: listed as equivalent but now killed: remove the entry")
            score.equivalent += 1
        elif r["status"] in KILLED:
            score.killed += 1
        elif r["status"] in SURVIVED:
            score.survived.append(key)
        else:
            score.unchecked += 1
    for key in equivalents:
        module = key.rsplit(".", 1)[0]
        if any(p.removesuffix(".py").replace("/", ".") == module for p in group.mutate) \
                and key not in results:
            problems.append(f"{key}: listed as equivalent but mutmut no longer makes it")
    if show:
        for key in sorted(survivors - set(equivalents)):
            print(f"\n--- survived: {key}\n{results[key].get('diff', '').rstrip()}")
    return list(scores.values()), problems


def main(argv: list[str] | None = None) -> int:
    base, groups, min_score = load_config()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("groups", nargs="*", metavar="GROUP",
                        help=f"groups to run (default: all of {', '.join(g.name for g in groups)})")
    parser.add_argument("--max-children", type=int, default=2, help="parallel mutant workers")
    parser.add_argument("--fresh", action="store_true", help="forget cached verdicts first")
    parser.add_argument("--survivors", action="store_true", help="print each survivor's diff")
    args = parser.parse_args(argv)
    unknown = set(args.groups) - {g.name for g in groups}
    if unknown:
        parser.error(f"unknown group(s): {', '.join(sorted(unknown))}")
    chosen = [g for g in groups if not args.groups or g.name in args.groups]
    equivalents = load_equivalents()

    rows: list[FileScore] = []
    problems: list[str] = []
    for group in chosen:
        scores, trouble = run_group(group, base, equivalents, args.max_children, args.fresh,
                                    args.survivors)
        rows += scores
        problems += trouble

    print(f"\n{'file':<40} {'killed':>7} {'survived':>9} {'equivalent':>11} {'score':>7}")
    failed = False
    for r in rows:
        low = r.score < min_score
        failed |= low or r.unchecked > 0
        note = "  < target" if low else (f"  ({r.unchecked} not checked)" if r.unchecked else "")
        print(f"{r.path:<40} {r.killed:>7} {len(r.survived):>9} {r.equivalent:>11} "
              f"{r.score:>6.1f}%{note}")
    for p in problems:
        print(f"error: {p}")
    print(f"target: {min_score:.0f} % of non-equivalent mutants killed in each file")
    return 1 if failed or problems else 0


if __name__ == "__main__":
    sys.exit(main())
