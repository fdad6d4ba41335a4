"""Reporters: golden outputs for every format, and the JSON and SARIF schemas.

The golden files in tests/golden/ are regenerated with

    NNLINT_REGEN_GOLDEN=1 pytest tests/test_reporters.py

and the diff reviewed like any other change. The run behind them is a real static lint of
two small files (one with NN109 findings, one that does not parse) plus two findings of
the kind the graph pass makes (module path, evidence, a fix, a related location), so that
every field a reporter can print is exercised.
"""

from __future__ import annotations

import io
import json
import os
import re
import textwrap
from pathlib import Path

import jsonschema
import pytest

import nnlint
from nnlint import engine, registry
from nnlint.config import Config
from nnlint.diagnostics import Diagnostic, Edit, Fix, Location, Severity
from nnlint.reporters import REPORTERS, github, json_report, sarif, text

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden"
DATA = HERE / "data"
SHARED_SCHEMA = HERE.parent.parent / "shared" / "diagnostics.schema.json"
REGEN = os.environ.get("NNLINT_REGEN_GOLDEN") == "1"

MODEL = textwrap.dedent(
    """\
    import torch.nn as nn
    import torch.nn.functional as F


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(784, 128)
            self.fc2 = nn.Linear(128, 10)

        def forward(self, x):
            x = F.relu(self.fc1(x))
            x = F.dropout(x, p=0.5)
            x = F.dropout(x, p=0.1)  # noqa: NN109
            return self.fc2(F.dropout(x, 0.2))
    """
)
BROKEN = "def forward(self, x)\n    return x\n"


def diagnostics_schema_path() -> Path:
    """CI runs a fresh clone with shared/ beside it; elsewhere use the copy in tests/data."""
    return SHARED_SCHEMA if SHARED_SCHEMA.is_file() else DATA / "diagnostics.schema.json"


@pytest.fixture
def result(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("model.py").write_text(MODEL, encoding="utf-8")
    Path("broken.py").write_text(BROKEN, encoding="utf-8")
    res = engine.lint(["model.py", "broken.py"], Config(), engine.Options(static=True, jobs=1), registry.select(["NN109"]))
    assert not res.errors, res.errors
    assert [d.code for d in res.diagnostics] == ["NN001", "NN109", "NN109"], res.diagnostics
    res.diagnostics.extend(
        [
            Diagnostic(
                code="NN109", name="functional-dropout-always-on", severity=Severity.ERROR,
                message="F.dropout without training= (50% of units, 'always'):\nsecond line",
                pass_="source", path="model.py", line=13, column=13, end_line=13, end_column=32, model="Net",
                fix=Fix("pass training=self.training", (Edit(13, 31, 13, 31, ", training=self.training"),), safe=True),
            ),
            Diagnostic(
                code="NN004", name="trace-fallback", severity=Severity.INFO,
                message="fx could not trace Net.forward; graph rules used hooks",
                pass_="tool", path="sub dir/model, v2.py", line=5, column=1, model="Net", module="features.0.conv",
                evidence={"nodes": 3, "ratio": float("nan"), "shape": (8, 3, 32, 32)},
                related=(Location("model.py", 8, 9, "fc1 is created here"),),
            ),
        ]
    )
    res.diagnostics.sort(key=lambda d: d.sort_key)
    res.duration_s = 0.0
    return res


def render(fmt: str, res, **kw) -> str:
    buf = io.StringIO()
    REPORTERS[fmt](res, buf, **kw)
    return buf.getvalue()


def _stable_sarif(doc: dict) -> dict:
    """Keep only the rule descriptors the results use (and renumber ruleIndex) and blank
    their docs, so that a rule added or reworded elsewhere does not change this golden
    file; the full list and the docs are checked by test_sarif_driver_lists_every_rule."""
    run = doc["runs"][0]
    used = sorted({r["ruleId"] for r in run["results"]})
    rules = [r for r in run["tool"]["driver"]["rules"] if r["id"] in used]
    for r in rules:  # the rules' own docs belong to their authors, not to this file
        r["fullDescription"]["text"] = "<summary>"
        r["help"] = {"text": "<docs>", "markdown": "<docs>"}
    run["tool"]["driver"]["rules"] = rules
    position = {r["id"]: i for i, r in enumerate(rules)}
    for r in run["results"]:
        r["ruleIndex"] = position[r["ruleId"]]
    for key in ("version", "semanticVersion"):
        run["tool"]["driver"][key] = "<version>"
    return doc


def _stable(fmt: str, out: str) -> str:
    if fmt == "sarif":
        return json.dumps(_stable_sarif(json.loads(out)), indent=2) + "\n"
    if fmt == "json":
        return out.replace(f'"nnlint_version": "{nnlint.__version__}"', '"nnlint_version": "<version>"')
    return out


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if REGEN:
        path.parent.mkdir(exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.is_file(), f"{path} is missing: run NNLINT_REGEN_GOLDEN=1 pytest {Path(__file__).name}"
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, (
        f"{name} differs from the golden file; if the change is intended, regenerate with "
        f"NNLINT_REGEN_GOLDEN=1 pytest tests/{Path(__file__).name} and review the diff"
    )


@pytest.mark.parametrize("fmt,suffix", [("text", "txt"), ("json", "json"), ("sarif", "sarif"), ("github", "txt")])
def test_golden(fmt, suffix, result):
    out = render(fmt, result, color=False)
    check_golden(f"report.{fmt}.{suffix}" if fmt != "text" else "report.txt", _stable(fmt, out))


def test_reporters_registry_is_the_documented_set():
    assert set(REPORTERS) == {"text", "json", "sarif", "github"}


# --- JSON -----------------------------------------------------------------------------


def test_json_validates_against_the_contract(result):
    schema = json.loads(diagnostics_schema_path().read_text(encoding="utf-8"))
    doc = json.loads(render("json", result))
    jsonschema.validators.validator_for(schema).check_schema(schema)
    jsonschema.validate(doc, schema, cls=jsonschema.validators.validator_for(schema))
    assert doc["version"] == 1
    assert doc["nnlint_version"] == nnlint.__version__
    assert doc["summary"] == {"files": 2, "models": 0, "models_not_checked": 0, "models_not_probed": 0, "errors": 4,
                              "warnings": 0,
                              "infos": 1, "duration_s": 0.0}
    nan = next(d for d in doc["diagnostics"] if d["code"] == "NN004")
    assert nan["evidence"] == {"nodes": 3, "ratio": "nan", "shape": [8, 3, 32, 32]}


def test_json_of_an_empty_run_validates():
    schema = json.loads(diagnostics_schema_path().read_text(encoding="utf-8"))
    doc = json.loads(render("json", engine.RunResult(diagnostics=[], files=0)))
    jsonschema.validate(doc, schema, cls=jsonschema.validators.validator_for(schema))
    assert doc["diagnostics"] == [] and doc["summary"]["files"] == 0


def test_json_diagnostics_round_trip(result):
    doc = json_report.as_dict(result)
    assert [Diagnostic.from_dict(d) for d in doc["diagnostics"]] == result.diagnostics


def test_schema_copy_matches_shared():
    if not SHARED_SCHEMA.is_file():
        pytest.skip("../shared is not beside this checkout")
    assert json.loads(SHARED_SCHEMA.read_text()) == json.loads((DATA / "diagnostics.schema.json").read_text()), (
        "tests/data/diagnostics.schema.json is stale: cp ../shared/diagnostics.schema.json tests/data/"
    )


# --- SARIF ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sarif_validator():
    schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
    assert schema["id"].startswith("https://docs.oasis-open.org/sarif/sarif/v2.1.0/")
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)


def test_sarif_validates_against_the_official_schema(result, sarif_validator):
    doc = json.loads(render("sarif", result))
    errors = sorted(sarif_validator.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])
    assert doc["version"] == "2.1.0"


def test_sarif_of_an_empty_run_validates(sarif_validator):
    doc = sarif.as_dict(engine.RunResult(diagnostics=[], files=0))
    sarif_validator.validate(doc)
    assert doc["runs"][0]["results"] == []


def test_sarif_schema_catches_a_broken_log(sarif_validator):
    """The validator is not vacuous: a result without a message is rejected."""
    doc = json.loads(render("sarif", engine.RunResult(diagnostics=[], files=0)))
    doc["runs"][0]["results"].append({"ruleId": "NN109", "level": "fatal"})
    assert not sarif_validator.is_valid(doc)


def test_sarif_driver_lists_every_rule(result):
    doc = sarif.as_dict(result)
    driver = doc["runs"][0]["tool"]["driver"]
    assert [r["id"] for r in driver["rules"]] == list(registry.all_rules())
    for descriptor in driver["rules"]:
        rule = registry.all_rules()[descriptor["id"]]
        assert descriptor["name"] == rule.name
        assert descriptor["help"]["text"] == rule.docs()
        assert descriptor["defaultConfiguration"]["level"] == sarif.LEVEL[rule.severity.value]
    for res in doc["runs"][0]["results"]:
        assert driver["rules"][res["ruleIndex"]]["id"] == res["ruleId"]


def test_sarif_locations_and_levels(result):
    res = sarif.as_dict(result)["runs"][0]["results"]
    by_code = {(r["ruleId"], r["locations"][0]["physicalLocation"]["region"]["startLine"]): r for r in res}
    info = by_code[("NN004", 5)]
    assert info["level"] == "note"
    assert info["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "sub%20dir/model%2C%20v2.py"
    assert info["relatedLocations"][0]["physicalLocation"]["region"] == {"startLine": 8, "startColumn": 9}
    fixed = next(r for r in res if "fixes" in r)
    assert fixed["fixes"][0]["artifactChanges"][0]["replacements"][0]["insertedContent"]["text"] == ", training=self.training"


# --- GitHub and text ------------------------------------------------------------------


def test_github_escapes_properties_and_data(result):
    lines = render("github", result).splitlines()
    assert len(lines) == len(result.diagnostics)
    info = next(line for line in lines if line.startswith("::notice "))
    assert "file=sub dir/model%2C v2.py," in info
    multi = next(line for line in lines if "second line" in line)
    assert "50%25 of units" in multi and "%0Asecond line" in multi
    assert re.match(r"^::error file=model\.py,line=13,col=13,endLine=13,endColumn=32,title=NN109 functional-dropout-always-on::", multi)


def test_text_summary_line():
    res = engine.RunResult(diagnostics=[], files=1)
    assert text.summary_line(res) == "All checks passed: 1 file in 0.00s."
    res.files, res.models, res.models_not_probed = 3, 2, 1
    assert text.summary_line(res) == "All checks passed: 3 files, 2 models found: 2 checked, 1 not probed in 0.00s."


def test_summary_says_what_was_not_checked_and_never_all_passed_when_nothing_was():
    """Issue 11.4: found / checked / not checked (with the NN002 count), and a run that
    checked no model of a file defining models never ends with 'All checks passed'."""
    res = engine.RunResult(diagnostics=[], files=1)
    res.files_run = 1
    assert text.summary_line(res) == "No problems found, but no model was checked: 1 file, 0 models found: 0 checked in 0.00s."
    nn002 = Diagnostic(code="NN002", name="model-not-checked", severity=Severity.INFO, message="m", pass_="tool",
                       path="a.py", line=1, column=1)
    res = engine.RunResult(diagnostics=[nn002], files=2, models=3, models_not_checked=1)
    res.files_run = 2
    assert text.summary_line(res).startswith("Found 1 problem (0 errors, 0 warnings, 1 info): 2 files, 4 models found: "
                                             "3 checked, 1 not checked (1 NN002) in ")
    assert json_report.as_dict(res)["summary"]["models_not_checked"] == 1


def test_text_has_no_escapes_without_colour(result):
    out = render("text", result, color=False)
    assert "\x1b" not in out
    assert out.splitlines()[0].startswith("broken.py:1:")
    assert out.splitlines()[-1].startswith("Found 5 problems (4 errors, 0 warnings, 1 info): 2 files")


def test_github_level_names_cover_every_severity():
    assert set(github.LEVEL) == {s.value for s in Severity} == set(sarif.LEVEL)


def test_plain_text_path_matches_rich(result, monkeypatch):
    """Uncoloured text skips rich (start-up time); it must print exactly what rich would."""
    result.diagnostics.append(Diagnostic(
        code="NN109", name="functional-dropout-always-on", severity=Severity.WARNING, pass_="source",
        message="odd [bold]markup[/bold] \\x07bell\\rcr \\x1b[31mescape\\x1b[0m ünï", path="m.py", line=1, module="a[0]",
    ))
    plain = render("text", result, color=False)
    monkeypatch.setattr(text, "_wants_rich", lambda stream, color: True)
    assert render("text", result, color=False) == plain


def test_not_checked_counts_models_by_the_finding_that_says_why():
    """A file that failed to import (NN003/NN007) counts the models it defines, not one per file,
    so the parenthetical adds up to the "not checked" count."""
    from nnlint.diagnostics import Diagnostic
    from nnlint.engine import RunResult
    from nnlint.reporters.text import summary_line

    def diag(code: str, evidence: dict) -> Diagnostic:
        return Diagnostic(code=code, name="x", severity=Severity.INFO, message="m", pass_="tool", path="a.py",
                          line=1, column=1, evidence=evidence)

    result = RunResult(files=3, models=1, models_not_checked=5, files_run=3,
                       diagnostics=[diag("NN002", {}), diag("NN007", {"models_not_checked": 3}),
                                    diag("NN003", {"models_not_checked": 1}), diag("NN007", {"models_not_checked": 0})])
    assert "6 models found: 1 checked, 5 not checked (1 NN002, 1 NN003, 3 NN007)" in summary_line(result)
