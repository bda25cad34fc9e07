"""The documentation: a short README whose links work, the CI running the README's test command,
a documentation site that builds strictly, tests it names that exist, and text that speaks of the
project and its use, not of how or where the work on it was done."""

from __future__ import annotations

import codecs
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
README_MAX_LINES = 250


def _decoded(encoded):
    """A rot13-encoded string, or a dict of them (keys and values), in plain text."""
    if isinstance(encoded, dict):
        return {_decoded(k): _decoded(v) for k, v in encoded.items()}
    return codecs.decode(encoded, "rot13")


# Phrases that describe the conditions the repository was written under instead of the project
# (case-insensitive regular expressions, keyed by what each catches). They are stored rot13-encoded
# so that this file passes the check it makes; ``_decoded`` turns them back. Checked against the
# repository first: pytest's ``scope=...`` for fixtures shared by the whole run and the device
# attribute of a torch tensor are not matched.
FORBIDDEN = _decoded({
    'n jbex frffvba': '(?<!fpbcr=")\\ofrffvbaf?\\o',
    'n yrag znpuvar': '\\oyrag\\o',
    'n obeebjrq znpuvar': '\\oobeebjrq\\o',
    'gur qrivpr gbby': '\\oqrivpr gbby\\o',
    'na vagreany TCH ehaare': '\\o(?:vagreany|tch) ehaare\\o',
    'gur .qrivpr/ ohaqyr': '(?:^|[\\f`\'\\"(\\[=])\\.qrivpr(?:/|\\o)',
    'n qrivpr_*.fu fpevcg (abj rkcrevzragf/tch_*.fu)': '\\oqrivpr_\\j+\\.fu\\o',
    "gur qrivpr gbby'f pnyy flagnk": '\\oeha\\(pbzznaq=|\\opneel=\\[|\\oSVYRF_NG\\o|\\otvir_onpx\\o',
    'na vagreany vffhr': '\\ogur [\\j-]+ vffhr\\o',
})

# The files whose text is checked: what a user reads (README, the documentation site, mkdocs.yml),
# the scripts they run, the packages' sources and docstrings, the tests and the CI set-up.
SCANNED = ("README.md", "mkdocs.yml", "setup.cfg", ".ci", "docs", "experiments", "nas_env",
           "agents", "tests")
TEXT_SUFFIXES = {".md", ".py", ".sh", ".yml", ".yaml", ".txt", ".cfg", ""}


def scanned_files() -> list[Path]:
    """The tracked (and not ignored, untracked) text files under :data:`SCANNED`."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", *SCANNED],
            cwd=REPO, capture_output=True, text=True, check=True,
        ).stdout.splitlines()
        paths = [REPO / name for name in listed]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: every file there
        paths = [p for name in SCANNED for p in ([REPO / name] if (REPO / name).is_file()
                                                  else (REPO / name).rglob("*"))]
    return sorted(p for p in paths if p.is_file() and p.suffix in TEXT_SUFFIXES
                  and "__pycache__" not in p.parts)


def test_the_scan_covers_the_readme_the_docs_the_scripts_and_the_packages():
    names = {p.relative_to(REPO).as_posix() for p in scanned_files()}
    for name in ("README.md", "mkdocs.yml", "docs/index.md", "docs/fidelity/index.md",
                 "experiments/train_ppo.py", "experiments/gpu_build_table.sh",
                 "nas_env/envs/cell_env.py", "agents/autoregressive_policy.py"):
        assert name in names, f"{name} is not scanned"


EXAMPLES = [(_decoded(text), _decoded(what)) for text, what in [
    ('Ba n yrag TCH znpuvar, va bar pnyy bs gur qrivpr gbby:', 'n yrag znpuvar'),
    ('onfu rkcrevzragf/qrivpr_xvg.fu zavfg', 'n qrivpr_*.fu fpevcg (abj rkcrevzragf/tch_*.fu)'),
    ('chg vagb .qrivpr/ jung vg ynpxf', 'gur .qrivpr/ ohaqyr'),
    ('eha(pbzznaq="onfu k.fu", pneel=[".qrivpr"])', "gur qrivpr gbby'f pnyy flagnk"),
    ('zrnfherq guvf frffvba ba vqyr pberf', 'n jbex frffvba'),
    ('gur rkcrevzrag-3 vffhr qbrf guvf', 'na vagreany vffhr'),
]]


@pytest.mark.parametrize("text, what", EXAMPLES)
def test_the_patterns_catch_what_they_are_for(text, what):
    assert re.search(FORBIDDEN[what], text, re.IGNORECASE)


@pytest.mark.parametrize("text", [
    "device = next(net.parameters()).device",
    "self.device = torch.device('cuda')",
    "workers on this machine load it from the data root",
    "the runner-up cell is 0.21 points below the best",
    "an excellent, equivalent cell",
])
def test_the_patterns_leave_ordinary_text_alone(text):
    assert not any(re.search(p, text, re.IGNORECASE) for p in FORBIDDEN.values())


def test_the_text_speaks_of_the_project_not_of_how_the_work_was_done():
    found = []
    for path in scanned_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            for what, pattern in FORBIDDEN.items():
                if re.search(pattern, line, re.IGNORECASE):
                    found.append(f"{path.relative_to(REPO)}:{number}: {what}: {line.strip()}")
    assert not found, "text about the circumstances of the work:\n" + "\n".join(found)


def test_the_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines, at most {README_MAX_LINES}: move details into docs/")


LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def relative_links(markdown: str) -> list[str]:
    """The targets of the Markdown links and images that point into the repository."""
    text = re.sub(r"```.*?```", "", markdown, flags=re.DOTALL)  # not the code blocks
    targets = [m.group(1) for m in LINK.finditer(text)]
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t, re.IGNORECASE)
            and not t.startswith("#")]


def test_every_relative_link_of_the_readme_points_to_a_file_that_exists():
    links = relative_links(README.read_text(encoding="utf-8"))
    assert any(link.startswith("docs/") for link in links)  # the README links into the docs
    missing = [link for link in links if not (REPO / link.split("#")[0]).exists()]
    assert not missing, f"README.md links to missing files: {missing}"


def test_the_link_parser_finds_links_and_images_and_skips_urls_and_code():
    text = ("[a](docs/a.md#x) ![f](docs/figures/f.png) [w](https://example.org) [h](#here)\n"
            "```\n[c](not/a/link.md)\n```\n")
    assert relative_links(text) == ["docs/a.md#x", "docs/figures/f.png"]


def defined_tests() -> dict[str, set[str]]:
    """Each test function of the suite, by name: the files (``tests/test_x.py``) that define it."""
    found: dict[str, set[str]] = {}
    for path in (REPO / "tests").glob("test_*.py"):
        for name in re.findall(r"^(?:async )?def (test_\w+)", path.read_text(encoding="utf-8"),
                               flags=re.M):
            found.setdefault(name, set()).add(f"tests/{path.name}")
    return found


def named_tests(text: str, test_column: bool = False) -> list[str]:
    """The tests a page names in backticks: ``tests/test_x.py::test_name`` and ``tests/test_x.py``
    anywhere; with ``test_column``, also each bare ``test_name`` in a table row's last column (the
    reliability page's "test" column)."""
    names = re.findall(r"`(tests/test_\w+\.py(?:::test_\w+)?)(?:\[[^\]`]*\])?`", text)
    if test_column:
        for row in re.findall(r"^\|.*\|\s*$", text, flags=re.M):
            names += re.findall(r"`(test_\w+)(?:\[[^\]`]*\])?`", row.rstrip().rstrip("|")
                                .rsplit("|", 1)[-1])
    return names


def test_every_test_the_documentation_names_exists():
    """A page that says a fault is tested names a test that is there, in the file it names."""
    defined, missing = defined_tests(), []
    for page in [README, *sorted((REPO / "docs").rglob("*.md"))]:
        for name in named_tests(page.read_text(encoding="utf-8"), page.name == "reliability.md"):
            if "::" in name:
                file, test = name.split("::")
                exists = file in defined.get(test, ())
            else:
                exists = (REPO / name).is_file() if name.startswith("tests/") else name in defined
            if not exists:
                missing.append(f"{page.relative_to(REPO)}: {name}")
    assert not missing, "the documentation names tests that do not exist:\n" + "\n".join(missing)
    page = ("| fault | what happens | `tests/test_a.py::test_b[x]`, `test_c` |\n"
            "see `test_d` and `tests/test_e.py`\n")
    assert named_tests(page, test_column=True) == ["tests/test_a.py::test_b", "tests/test_e.py",
                                                   "test_c"]
    assert named_tests(page) == ["tests/test_a.py::test_b", "tests/test_e.py"]


def readme_test_command() -> str:
    """The command of the README's quick start that runs the tests, as `python -m pytest ...`."""
    for line in README.read_text(encoding="utf-8").splitlines():
        match = re.search(r"\.venv/bin/(python -m pytest[^\n`]*)", line)
        if match:
            return match.group(1).strip()
    raise AssertionError("README.md has no `.venv/bin/python -m pytest` command")


def test_the_readme_test_command_runs_the_whole_suite_and_reports_skips():
    command = readme_test_command()
    assert command.split()[:3] == ["python", "-m", "pytest"]
    assert "-rs" in command.split()
    assert not any(arg.startswith("tests/") or arg in ("-k", "-m") for arg in command.split()[3:])


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    marker = next(i for i, line in enumerate(ci) if line.strip() == "# The README's test command:")
    assert ci[marker + 1].strip() == readme_test_command()


def test_the_dev_extra_installs_what_the_suite_needs():
    cfg = (REPO / "setup.cfg").read_text(encoding="utf-8")
    dev = re.search(r"^dev =\n((?:[ \t]+\S.*\n)+)", cfg, re.MULTILINE)
    assert dev, "setup.cfg has no dev extra"
    requirements = dev.group(1)
    for name in ("pytest", "pytest-timeout", "ray"):
        assert re.search(rf"^\s+{re.escape(name)}\b", requirements, re.MULTILINE), name


def test_every_figure_is_shown_on_a_docs_page():
    pages = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "docs").rglob("*.md"))
    unused = [f.name for f in sorted((REPO / "docs" / "figures").glob("*.png"))
              if f"figures/{f.name}" not in pages]
    assert not unused, f"figures no docs page shows: {unused}"


def test_the_documentation_builds_strictly(tmp_path):
    """`mkdocs build --strict`: a broken link or anchor, or a docstring the API reference
    cannot parse, fails it."""
    pytest.importorskip("mkdocs", reason="pip install -e '.[docs]'")
    pytest.importorskip("mkdocstrings_handlers.python", reason="pip install -e '.[docs]'")
    pytest.importorskip("material", reason="pip install -e '.[docs]'")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    warnings = [line for line in done.stderr.splitlines() if "WARNING" in line or "ERROR" in line]
    assert done.returncode == 0, (
        "mkdocs build --strict failed:\n" + "\n".join(warnings or [done.stderr[-3000:]]))
    assert (tmp_path / "site" / "environments" / "nascell-large-v0" / "index.html").is_file()


def test_every_script_of_experiments_is_on_the_map():
    scripts = sorted(p.name for p in (REPO / "experiments").iterdir()
                     if p.suffix in (".py", ".sh") and p.is_file())
    for map_page in ("docs/scripts.md", "experiments/README.md"):  # the full map and the folder's
        page = (REPO / map_page).read_text(encoding="utf-8")
        missing = [name for name in scripts if f"`{name}`" not in page]
        assert not missing, f"{map_page} does not place: {missing}"
