"""The package's shape: modules small enough to read whole, no import cycles, the torch-free
modules free of torch, the old import paths still answering, and the renamed env method still
callable by its old name.

``docs/architecture.md`` draws the layers these checks keep."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MAX_LINES = 400
"""The most lines a module of ``nas_env`` or ``agents`` may have (as ``wc -l`` counts them)."""


def modules() -> list[Path]:
    return sorted(p for package in ("nas_env", "agents") for p in (REPO / package).rglob("*.py")
                  if "__pycache__" not in p.parts)


def test_every_module_is_at_most_400_lines():
    assert len(modules()) > 40  # the walk found the packages
    long = {str(p.relative_to(REPO)): n for p in modules()
            if (n := p.read_bytes().count(b"\n")) > MAX_LINES}
    assert not long, (f"modules over {MAX_LINES} lines (split them by job; see "
                      f"docs/architecture.md): {long}")


def imports_torch(*names: str) -> bool:
    """Whether importing ``names`` in a fresh interpreter imports torch."""
    code = (f"import sys\nimport {', '.join(names)}\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    return out.strip() == "True"


def test_the_cache_and_the_protocols_import_no_torch():
    assert not imports_torch("nas_env.cache", "nas_env.protocols")


def test_tables_rewards_evaluators_and_backends_import_no_torch_until_they_train():
    assert not imports_torch("nas_env.tables", "nas_env.rewards", "nas_env.evaluation",
                             "nas_env.backends", "nas_env.envs.search_env")


def test_the_check_can_see_torch():
    assert imports_torch("nas_env.zero_cost")


def module_level_imports() -> dict[str, set[str]]:
    """For every module of ``nas_env``, the modules of ``nas_env`` it imports when it is imported
    (its body and top-level ``try``/``if`` blocks, not ``if TYPE_CHECKING`` nor functions)."""
    files = {".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): p
             for p in (REPO / "nas_env").rglob("*.py") if "__pycache__" not in p.parts}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        statements, found = list(ast.parse(path.read_text(encoding="utf-8")).body), set()
        while statements:
            node = statements.pop()
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                statements.extend(node.orelse)
            elif isinstance(node, (ast.If, ast.Try)):
                statements.extend(node.body + node.orelse + getattr(node, "finalbody", []))
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
                found.update([base] + [f"{base}.{a.name}" for a in node.names])
        graph[name] = {m for m in found if m in files and m != name}
    return graph


def test_no_two_modules_of_the_package_import_each_other():
    graph = module_level_imports()
    assert {"nas_env.evaluation.live", "nas_env.tables.reward_table"} <= set(graph)
    assert "nas_env.tables.schema" in graph["nas_env.tables.reward_table"]
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                cycle = path[path.index(target):] + [target]
                raise AssertionError("an import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, path + [target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


# The old modules re-export what now lives elsewhere: (old module, name, new module).
MOVED = [
    ("nas_env.benchmark", "RewardTable", "nas_env.tables.reward_table"),
    ("nas_env.benchmark", "RewardTableError", "nas_env.tables.schema"),
    ("nas_env.benchmark", "TABLE_COLUMNS", "nas_env.tables.schema"),
    ("nas_env.benchmark", "METRICS", "nas_env.tables.schema"),
    ("nas_env.benchmark", "table_path", "nas_env.tables.files"),
    ("nas_env.benchmark", "load_table", "nas_env.tables.files"),
    ("nas_env.benchmark", "user_table_dir", "nas_env.tables.files"),
    ("nas_env.benchmark", "Reward", "nas_env.rewards"),
    ("nas_env.benchmark", "Optimum", "nas_env.rewards"),
    ("nas_env.benchmark", "R_PARAM_PENALTY", "nas_env.rewards"),
    ("nas_env.benchmark", "DEFAULT_BUDGETS", "nas_env.rewards"),
    ("nas_env.benchmark", "check_seed_mode", "nas_env.keywords"),
    ("nas_env.table_builder", "build_reward_table", "nas_env.tables.builder"),
    ("nas_env.table_builder", "atomic_write_text", "nas_env.tables.builder"),
    ("nas_env.table_builder", "export_cache_table", "nas_env.tables.builder"),
    ("nas_env.table_compare", "compare_tables", "nas_env.tables.compare"),
    ("nas_env.evaluators", "Evaluator", "nas_env.evaluation.interface"),
    ("nas_env.evaluators", "TableEvaluator", "nas_env.evaluation.table"),
    ("nas_env.evaluators", "LiveEvaluator", "nas_env.evaluation.live"),
    ("nas_env.evaluators", "make_evaluator", "nas_env.evaluation.factory"),
    ("nas_env.evaluators", "LIVE_KEYWORDS", "nas_env.evaluation.factory"),
    ("nas_env.evaluators", "skipped_result", "nas_env.evaluation.records"),
    ("nas_env.score_evaluator", "ScoreEvaluator", "nas_env.evaluation.score"),
    ("nas_env.parallel", "TrainingSpec", "nas_env.backends.jobs"),
    ("nas_env.parallel", "Job", "nas_env.backends.jobs"),
    ("nas_env.parallel", "EvalBackend", "nas_env.backends.base"),
    ("nas_env.parallel", "InlineBackend", "nas_env.backends.inline"),
    ("nas_env.parallel", "ProcessBackend", "nas_env.backends.process_pool"),
    ("nas_env.parallel", "RayBackend", "nas_env.backends.ray_tasks"),
    ("nas_env.parallel", "RayClusterError", "nas_env.backends.ray_tasks"),
    ("nas_env.parallel", "import_ray", "nas_env.backends.ray_tasks"),
    ("nas_env.parallel", "make_backend", "nas_env.backends.factory"),
    ("nas_env.parallel", "BACKENDS", "nas_env.backends.factory"),
    ("nas_env.zero_cost", "score_cell", "nas_env.zero_cost.scoring"),
    ("nas_env.zero_cost", "SCORES", "nas_env.zero_cost.scoring"),
    ("nas_env.zero_cost", "synflow", "nas_env.zero_cost.gradients"),
    ("nas_env.zero_cost", "naswot", "nas_env.zero_cost.activations"),
    ("nas_env.zero_cost", "param_count", "nas_env.zero_cost.size"),
]


@pytest.mark.parametrize("old, name, new", MOVED)
def test_an_old_import_path_gives_the_object_from_its_new_home(old, name, new):
    moved = getattr(importlib.import_module(new), name)
    assert getattr(importlib.import_module(old), name) is moved


@pytest.mark.parametrize("old", sorted({old for old, _, _ in MOVED} - {"nas_env.zero_cost"}))
def test_an_old_module_only_re_exports_and_says_where_things_live(old):
    module = importlib.import_module(old)
    defined = [name for name, value in vars(module).items()
               if getattr(value, "__module__", None) == old and not name.startswith("_")]
    assert defined == []
    assert "re-export" in module.__doc__


def test_the_env_method_evaluate_still_works_and_says_it_is_deprecated():
    import gymnasium as gym

    import nas_env  # noqa: F401  (registers the ids)
    from nas_env.spaces import SmallCell

    fixture = REPO / "tests" / "fixtures" / "small_fixture.csv"
    env = gym.make("NASCell-small-v0", table_path=fixture).unwrapped
    env.reset(seed=0)
    cell = SmallCell("conv3x3", "max_pool2x2")
    with pytest.warns(DeprecationWarning, match="reward_cell"):
        old_reward, old_info = env.evaluate(cell)
    reward, info = env.reward_cell(cell)
    assert old_reward == reward
    assert ({k: v for k, v in old_info.items() if k != "total_training_time"}
            == {k: v for k, v in info.items() if k != "total_training_time"})
