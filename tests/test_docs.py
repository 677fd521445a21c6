"""The documentation stays true to the tree: its links resolve and the ``lpa`` names it writes exist.

Pages: ``README.md``, ``config/README.md`` and ``docs/**/*.md``.

- Every relative link resolves to an existing file (or folder), and every ``#anchor``, on the
  page itself or in ``other.md#anchor``, matches a heading of the target page under GitHub's
  slug rule.
- Every ``lpa.<module>`` or ``lpa.<module>.<name>`` names something that exists: the longest
  dotted prefix that is a module file (``lpa/x.py`` or ``lpa/x/__init__.py``), then a top-level
  def, class, assignment or import of that module (and, under a class, a name in its body),
  found with :mod:`ast`. No module of ``lpa`` is imported (torch is heavy).
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lpa"


def doc_pages(root: Path = ROOT) -> list[Path]:
    pages = [root / "README.md", root / "config" / "README.md", *sorted((root / "docs").rglob("*.md"))]
    return [p for p in pages if p.is_file()]


# --- Markdown -------------------------------------------------------------------------------

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
# [text](target "title"): the text may hold one level of brackets, the target one of parentheses
INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]"
    r"\(\s*<?([^()\s>]*(?:\([^()\s]*\)[^()\s>]*)*)>?(?:\s+[\"'(].*?[\"')])?\s*\)"
)
REFERENCE_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of every line outside fenced code blocks."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor of a heading's text (before de-duplication).

    Markdown markup is dropped (links keep their text, code spans their content, emphasis
    markers go), then: lowercase; every character that is not a letter, a digit, an underscore,
    a hyphen or a space is removed; each space becomes a hyphen.
    """
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text)
    text = text.replace("`", "").replace("*", "")
    text = text.strip().lower()
    text = "".join(ch for ch in text if ch.isalnum() or ch in "_- ")
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading anchor of a page; a repeated slug gets -1, -2, ... as GitHub numbers them."""
    seen: dict[str, int] = {}
    found = set()
    for _, line in prose_lines(text):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(text: str) -> list[tuple[int, str]]:
    """(line number, target) of every inline link, image and reference definition outside code."""
    found = []
    for number, line in prose_lines(text):
        bare = CODE_SPAN.sub("", line)
        found += [(number, m.group(1)) for m in INLINE_LINK.finditer(bare)]
        ref = REFERENCE_DEF.match(bare)
        if ref:
            found.append((number, ref.group(1)))
    return found


def link_problems(page: Path, text: str | None = None) -> list[str]:
    """What is wrong with the relative links of one page, each naming the page and the link."""
    text = page.read_text(encoding="utf-8") if text is None else text
    problems = []
    for number, target in links(text):
        if not target or SCHEME.match(target) or target.startswith("//"):
            continue
        path_part, _, anchor = target.partition("#")
        where = f"{page}:{number}: link {target!r}"
        if path_part:
            resolved = (page.parent / path_part).resolve()
            if not resolved.exists():
                problems.append(f"{where}: {path_part} does not exist")
                continue
        else:
            resolved = page
        if anchor:
            if resolved.is_dir() or resolved.suffix.lower() != ".md":
                problems.append(f"{where}: an anchor into {resolved.name}, which is not a Markdown page")
                continue
            target_text = text if resolved == page else resolved.read_text(encoding="utf-8")
            if anchor not in anchors(target_text):
                problems.append(f"{where}: no heading of {resolved.name} has the anchor #{anchor}")
    return problems


# --- Names of the package -------------------------------------------------------------------

# lpa.<identifier>(.<identifier>)*, not part of a longer word or path (config/lpa.yaml, x.lpa.y)
LPA_NAME = re.compile(r"(?<![\w/.\-])lpa(?:\.[A-Za-z_]\w*)+")


def module_file(parts: tuple[str, ...], package: Path) -> Path | None:
    """``lpa/a/b.py`` or ``lpa/a/b/__init__.py`` for ``("lpa", "a", "b")``."""
    base = package.parent.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _bound_names(body: list[ast.stmt]) -> dict[str, ast.AST]:
    """Names a module or class body binds at its own level (through if/try blocks too)."""
    names: dict[str, ast.AST] = {}

    def targets(node: ast.AST) -> list[str]:
        if isinstance(node, ast.Name):
            return [node.id]
        if isinstance(node, ast.Tuple | ast.List):
            return [n for elt in node.elts for n in targets(elt)]
        return []

    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names[node.name] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                names.update(dict.fromkeys(targets(target), node))
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            names.update(dict.fromkeys(targets(node.target), node))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name != "*":
                    names[alias.asname or alias.name.split(".")[0]] = node
        elif isinstance(node, ast.If | ast.Try | ast.With):
            blocks = [node.body, getattr(node, "orelse", []), getattr(node, "finalbody", [])]
            blocks += [h.body for h in getattr(node, "handlers", [])]
            for block in blocks:
                names.update(_bound_names(block))
    return names


@cache
def _module_names(path: Path) -> dict[str, ast.AST]:
    return _bound_names(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)).body)


def name_problem(dotted: str, package: Path = PACKAGE) -> str | None:
    """Why ``dotted`` (``lpa.x.y.Name``) names nothing under ``package``, or None when it exists."""
    parts = tuple(dotted.split("."))
    for split in range(len(parts), 0, -1):
        path = module_file(parts[:split], package)
        if path is not None:
            break
    else:
        return f"{dotted}: no package {package}"
    rest = parts[split:]
    if not rest:
        return None
    scope = _module_names(path)
    for depth, name in enumerate(rest):
        node = scope.get(name)
        if node is None:
            owner = ".".join(parts[: split + depth])
            kind = "module" if depth == 0 else "class"
            hint = f" (no module file {'/'.join(parts[: split + 1])}.py either)" if depth == 0 else ""
            return f"{dotted}: {kind} {owner} defines no {name!r}{hint}"
        if not isinstance(node, ast.ClassDef):
            return None  # a function, an assignment or an import: its attributes are not followed
        scope = _bound_names(node.body)
    return None


def name_problems(page: Path, text: str | None = None, package: Path = PACKAGE) -> list[str]:
    text = page.read_text(encoding="utf-8") if text is None else text
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        for match in LPA_NAME.finditer(line):
            problem = name_problem(match.group(0), package)
            if problem:
                problems.append(f"{page}:{number}: {problem}")
    return problems


# --- The checks -----------------------------------------------------------------------------

PAGES = doc_pages()


def _id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def test_the_pages_are_found():
    names = {_id(p) for p in PAGES}
    assert {"README.md", "config/README.md"} <= names
    assert any(n.startswith("docs/") for n in names)


@pytest.mark.parametrize("page", PAGES, ids=_id)
def test_every_relative_link_and_anchor_resolves(page):
    problems = link_problems(page)
    assert not problems, "broken links:\n" + "\n".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=_id)
def test_every_lpa_name_exists(page):
    problems = name_problems(page)
    assert not problems, "names that do not exist in lpa/:\n" + "\n".join(problems)


# --- Self-checks of the checkers, on hand-made text -----------------------------------------


def test_slug_follows_githubs_rule():
    assert slug("The PaCo protocol") == "the-paco-protocol"
    assert slug("Starting from PaCo's released model") == "starting-from-pacos-released-model"
    assert slug("On a cluster (SLURM) and on several GPUs") == "on-a-cluster-slurm-and-on-several-gpus"
    assert slug("`make test`: the fast lane") == "make-test-the-fast-lane"
    assert slug("Read `train_balanced_top1`, not [this](x.md)") == "read-train_balanced_top1-not-this"
    assert slug("Step cost, 400 epochs / 2 GPUs") == "step-cost-400-epochs--2-gpus"
    assert anchors("# Results\n## Results\n```\n# not a heading\n```\n## Results\n") == {
        "results", "results-1", "results-2"}  # fmt: skip


def test_link_checker_reports_missing_files_and_anchors(tmp_path):
    (tmp_path / "other.md").write_text("# Other page\n\n## A section\n")
    (tmp_path / "folder").mkdir()
    page = tmp_path / "page.md"
    text = (
        "# Title\n\n## Here\n\n"
        "[ok](other.md) [ok](other.md#a-section) [ok](#here) [ok](folder/) [ok](https://x.org/#y)\n"
        '`[not a link](gone.md)` [title](other.md "a title")\n'
        "```\n[in code](gone.md)\n```\n"
        "[missing file](gone.md) [missing anchor](other.md#no-such) [own](#nowhere)\n"
        "[ref]: other.md#a-section\n[bad ref]: other.md#absent\n"
    )
    problems = link_problems(page, text)
    assert len(problems) == 4, problems
    assert any("gone.md does not exist" in p for p in problems)
    assert any("'other.md#no-such'" in p and "#no-such" in p for p in problems)
    assert any("'#nowhere'" in p for p in problems)
    assert any("'other.md#absent'" in p for p in problems)
    assert all(str(page) in p for p in problems)


def test_name_checker_resolves_modules_and_reports_what_is_missing(tmp_path):
    package = tmp_path / "lpa"
    (package / "io").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "train.py").write_text("import torch\nfrom x import y as z\nA = 1\nclass Net:\n    size = 3\n"
                                      "    def forward(self): pass\ndef main(): pass\n")  # fmt: skip
    (package / "io" / "__init__.py").write_text("from lpa.io.files import write_json\n")
    (package / "io" / "files.py").write_text("try:\n    import faiss\nexcept ImportError:\n    faiss = None\n")
    for ok in ["lpa", "lpa.train", "lpa.train.main", "lpa.train.A", "lpa.train.torch", "lpa.train.z",
               "lpa.train.Net.forward", "lpa.train.Net.size", "lpa.train.main.anything", "lpa.io",
               "lpa.io.write_json", "lpa.io.files", "lpa.io.files.faiss"]:  # fmt: skip
        assert name_problem(ok, package) is None, ok
    assert "defines no 'health'" in name_problem("lpa.health", package)
    assert "lpa/health.py" in name_problem("lpa.health", package)
    assert "lpa.train defines no 'nothing'" in name_problem("lpa.train.nothing", package)
    assert "class lpa.train.Net defines no 'backward'" in name_problem("lpa.train.Net.backward", package)
    assert "lpa.io.files defines no 'sha256'" in name_problem("lpa.io.files.sha256", package)

    text = "run `python -m lpa.train`, then lpa.shards.read; not config/lpa.yaml nor lpa.\n"
    problems = name_problems(tmp_path / "page.md", text, package)
    assert len(problems) == 1 and "lpa.shards.read" in problems[0] and "page.md:1" in problems[0], problems
