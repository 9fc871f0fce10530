"""No sentence the harness writes names the demo's domain.

The harness audits services it has never seen; a finding that speaks of "a slot booked twice" or
"a customer with no staff" on a pack selling insurance is untrue there. Every string the harness's
code can put in front of a user (findings, recommendations, reports, errors) is scanned for the
bundled demo's nouns. Docstrings and comments may use the demo as an example, and the selftest,
which is the demo's own oracle, may name its flaws.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

HARNESS = Path(__file__).resolve().parents[1] / "harness"
#: The booking demo's domain: its resources, its personas, what they do.
DEMO_NOUNS = re.compile(
    r"\b(book(s|ed|ing|ings)?|slots?|appointments?|patients?|clinics?|practitioners?|staff|"
    r"receptionists?|doctors?|nurses?)\b",
    re.IGNORECASE,
)
#: Files allowed to name the demo, and why.
EXEMPT = {
    "selftest.py": "the demo's detection matrix: what each of its flaws must produce",
}


def _docstrings(tree: ast.AST) -> set[int]:
    nodes: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                nodes.add(id(body[0].value))
    return nodes


def _user_strings(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = _docstrings(tree)
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]  # fmt: skip


def _template_text(path: Path) -> list[tuple[int, str]]:
    text = re.sub(r"\{#.*?#\}", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)  # Jinja comments
    return list(enumerate(text.splitlines(), start=1))


def demo_words_in_harness() -> list[str]:
    hits = []
    for path in sorted(HARNESS.rglob("*")):
        if path.name in EXEMPT:
            continue
        if path.suffix == ".py":
            strings = _user_strings(path)
        elif path.suffix in (".j2", ".md", ".html"):
            strings = _template_text(path)
        else:
            continue
        for line, text in strings:
            if text.startswith("scenarios/"):
                continue  # the default pack's path (cli's [PACK] default), not a sentence
            hits += [f"{path.relative_to(HARNESS)}:{line}: {m.group(0)!r} in {text[:80]!r}"
                     for m in DEMO_NOUNS.finditer(text)]  # fmt: skip
    return hits


def test_no_string_the_harness_writes_names_the_demos_domain() -> None:
    assert demo_words_in_harness() == []


def test_the_scan_sees_a_demo_noun_in_an_f_string_and_ignores_a_docstring(tmp_path: Path) -> None:
    module = tmp_path / "rule.py"
    module.write_text('"""A slot booked twice is the example here."""\n'
                      'def f(n):\n    """Per patient."""\n    return f"{n} records, for example a slot booked twice"\n')  # fmt: skip
    found = [m.group(0) for _, text in _user_strings(module) for m in DEMO_NOUNS.finditer(text)]
    assert found == ["slot", "booked"]
