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
    assert (DOCS / doc).read_text(encoding="utf-8") == (SHARED / shared).read_text(encoding="utf-8"), (
        f"docs/{doc} is stale: cp ../shared/{shared} docs/{doc}")


def test_cited_documents_exist():
    cited = set()
    for path in [*ROOT.glob("nnlint/**/*.py"), *ROOT.glob("rules/**/*.py"), ROOT / "README.md", ROOT / "CONTRIBUTING.md"]:
        cited |= set(re.findall(r"\bdocs/[A-Za-z_]+\.md\b", path.read_text(encoding="utf-8")))
        assert "shared/" not in re.sub(r"\.\./shared/", "", path.read_text(encoding="utf-8")).replace("tests/data", ""), (
            f"{path.relative_to(ROOT)} cites shared/, which is not in the repository: cite docs/ instead")
    assert cited, "no document cited"
    for name in cited:
        assert (ROOT / name).is_file(), f"{name} is cited but missing"
