"""The documents the code cites are in the repository and agree with it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nnlint import registry

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SHARED = ROOT.parent / "shared"


def test_catalog_lists_every_registered_rule():
    catalog = (DOCS / "RULES.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| (NN\d{3}) \| ([a-z0-9-]+) \|", catalog, flags=re.M))
    missing = {code: rule.name for code, rule in registry.all_rules().items() if rows.get(code) != rule.name}
    assert not missing, f"docs/RULES.md lacks (or names differently) {missing}"


@pytest.mark.parametrize("doc,shared", [("RULES.md", "RULES.md"), ("DESIGN.md", "STYLE.md"),
                                        ("MEASUREMENTS.md", "MEASUREMENTS.md"),
                                        ("diagnostics.schema.json", "diagnostics.schema.json")])
def test_docs_match_shared_copies(doc, shared):
    if not (SHARED / shared).is_file():
        pytest.skip("../shared is not beside this checkout")
    ours, theirs = (DOCS / doc).read_text(encoding="utf-8"), (SHARED / shared).read_text(encoding="utf-8")
    if doc == "RULES.md":  # new codes are added to the catalog; the owners' rows stay as they are
        added = [ln for ln in ours.splitlines() if ln not in theirs.splitlines()]
        new_codes = [ln for ln in added if re.match(r"^\| NN\d{3} \|", ln) and ln.split("|")[1] not in theirs]
        assert added == new_codes, f"docs/RULES.md changes the owners' catalog beyond new codes: {added}"
        ours = "\n".join(ln for ln in ours.splitlines() if ln not in new_codes) + ("\n" if ours.endswith("\n") else "")
    assert ours == theirs, f"docs/{doc} is stale: cp ../shared/{shared} docs/{doc}"


def test_cited_documents_exist():
    cited = set()
    for path in [*ROOT.glob("nnlint/**/*.py"), *ROOT.glob("rules/**/*.py"), ROOT / "README.md", ROOT / "CONTRIBUTING.md"]:
        cited |= set(re.findall(r"\bdocs/[A-Za-z_]+\.md\b", path.read_text(encoding="utf-8")))
        assert "shared/" not in re.sub(r"\.\./shared/", "", path.read_text(encoding="utf-8")).replace("tests/data", ""), (
            f"{path.relative_to(ROOT)} cites shared/, which is not in the repository: cite docs/ instead")
    assert cited, "no document cited"
    for name in cited:
        assert (ROOT / name).is_file(), f"{name} is cited but missing"


def _module_map() -> str:
    """docs/ARCHITECTURE.md: every module of nnlint/ and every shared helper of rules/ with the
    first sentence of its docstring (rule files are listed by the rule catalog instead)."""
    import ast

    out = [
        "# nnlint's modules, one job each",
        "",
        "Generated from each module's docstring by `tests/test_docs.py`",
        "(`NNLINT_REGEN_DOCS=1 pytest tests/test_docs.py` after adding or splitting a module).",
        "Rule files (`rules/<pass>/nnXXX_name.py`, one rule each) are listed in docs/RULES.md.",
        "The shape and its reasons are in docs/DESIGN.md.",
        "",
    ]
    folder = None
    paths = [*ROOT.glob("nnlint/**/*.py"), *ROOT.glob("rules/**/*.py")]
    for path in sorted(paths, key=lambda p: (str(p.parent), p.name)):
        rel = path.relative_to(ROOT)
        if re.match(r"nn\d{3}_", path.name) or (path.name == "__init__.py" and rel.parent.name == "rules"):
            continue
        if rel.parent != folder:
            folder = rel.parent
            out += ["", f"## {folder}/", ""]
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        first = re.split(r"(?<=[.!?])\s", " ".join(doc.split()), maxsplit=1)[0]
        out.append(f"- `{path.name}`: {first or '(no docstring)'}")
    return "\n".join(out).replace("\n\n\n", "\n\n") + "\n"


def test_architecture_doc_names_every_module_and_its_one_job():
    import os

    text = _module_map()
    doc = DOCS / "ARCHITECTURE.md"
    if os.environ.get("NNLINT_REGEN_DOCS"):
        doc.write_text(text, encoding="utf-8")
    assert "(no docstring)" not in text, "a module has no docstring saying its one job"
    assert doc.read_text(encoding="utf-8") == text, "docs/ARCHITECTURE.md is stale: NNLINT_REGEN_DOCS=1 pytest tests/test_docs.py"
