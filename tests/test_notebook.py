"""Jupyter notebooks: code cells linted as one program, positions at (cell, line), magics
masked, noqa inside cells, folders pick notebooks up, bad JSON is NN001, and the dynamic
passes run the cells' program with the same script safety as a .py file."""

from __future__ import annotations

import io
import json
from pathlib import Path

import jsonschema
import pytest

from nnlint import notebook
from nnlint.cli import main

HERE = Path(__file__).parent


def make_nb(*cells: tuple[str, str], indent: int = 1) -> str:
    out = []
    for i, (kind, src) in enumerate(cells):
        c = {"cell_type": kind, "id": f"c{i}", "metadata": {}, "source": src.splitlines(keepends=True)}
        if kind == "code":
            c.update(execution_count=None, outputs=[])
        out.append(c)
    nb = {"cells": out, "metadata": {"language_info": {"name": "python"}}, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(nb, indent=indent, ensure_ascii=False) + "\n"


IMPORTS = "%matplotlib inline\n!pip install torch\nimport torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
MODEL = (
    "class Net(nn.Module):\n"
    "    def __init__(self):\n"
    "        super().__init__()\n"
    "        self.fc = nn.Linear(16, 4)\n"
    "\n"
    "    def forward(self, x):\n"
    "        x = F.dropout(x, p=0.5)\n"
    "        return self.fc(x)\n"
)


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def nb(tmp_path):
    p = tmp_path / "nb.ipynb"
    p.write_text(make_nb(("markdown", "# Title"), ("code", IMPORTS), ("code", MODEL)), encoding="utf-8")
    return p


def test_text_position_is_cell_relative(nb):
    code, out, err = run("--static", "--select", "NN109", str(nb))
    assert code == 1, err
    assert f"{nb}:cell 3:7:13: NN109 error:" in out


def test_json_has_cell_and_validates(nb):
    code, out, _ = run("--static", "--select", "NN109", "--format", "json", str(nb))
    doc = json.loads(out)
    (d,) = doc["diagnostics"]
    assert (d["cell"], d["line"], d["column"]) == (3, 7, 13)
    schema = json.loads((HERE / "data" / "diagnostics.schema.json").read_text())
    jsonschema.validate(doc, schema, cls=jsonschema.validators.validator_for(schema))


def test_sarif_and_github_say_the_cell(nb):
    _, out, _ = run("--static", "--select", "NN109", "--format", "github", str(nb))
    assert "(cell 3)" in out and "cell 3, line 7:" in out
    _, out, _ = run("--static", "--select", "NN109", "--format", "sarif", str(nb))
    res = json.loads(out)["runs"][0]["results"][0]
    assert res["properties"]["cell"] == 3 and res["message"]["text"].startswith("cell 3:")
    assert res["locations"][0]["physicalLocation"]["region"]["startLine"] == 7


def test_folder_picks_up_notebooks(nb):
    code, out, _ = run("--static", "--select", "NN109", str(nb.parent))
    assert "cell 3:7:13: NN109" in out and "1 file" in out


def test_magics_are_masked_not_parsed(tmp_path):
    p = tmp_path / "m.ipynb"
    p.write_text(make_nb(("code", "%%time\nimport torch\nx = !ls\nfiles = %sx ls\n"),
                         ("code", "%%bash\necho hi | grep h\n"), ("code", "torch.zeros?\n")))
    code, out, err = run("--static", str(p))
    assert code == 0, out + err
    assert "All checks passed" in out


def test_noqa_inside_a_cell(tmp_path):
    p = tmp_path / "q.ipynb"
    p.write_text(make_nb(("code", IMPORTS), ("code", MODEL.replace("p=0.5)", "p=0.5)  # noqa: NN109"))))
    code, out, _ = run("--static", "--select", "NN109", str(p))
    assert code == 0 and "All checks passed" in out


def test_bad_json_is_nn001(tmp_path):
    p = tmp_path / "broken.ipynb"
    p.write_text('{"cells": [\n  {"cell_type": "code",\n')
    code, out, _ = run("--static", str(p))
    assert code == 1
    assert "NN001" in out and "not a Jupyter notebook: invalid JSON" in out
    q = tmp_path / "list.ipynb"
    q.write_text("[1, 2]\n")
    _, out, _ = run("--static", str(q))
    assert "NN001" in out and "no 'cells' list" in out


def test_syntax_error_in_a_cell(tmp_path):
    p = tmp_path / "s.ipynb"
    p.write_text(make_nb(("code", "import torch\n"), ("markdown", "x"), ("code", "def f(:\n    pass\n")))
    _, out, _ = run("--static", str(p))
    assert ":cell 3:1:" in out and "NN001" in out


def test_line_map_and_masking():
    book = notebook.parse("x.ipynb", make_nb(("code", "a = 1\n!ls\n"), ("markdown", "m"), ("code", "b = 2")))
    assert book.program == "a = 1\n" + notebook.MASK + "\nb = 2\n"
    assert [book.locate(i) for i in (1, 2, 3)] == [(1, 1), (1, 2), (3, 1)]


@pytest.mark.parametrize("indent", [1, 2, 4])
def test_with_sources_keeps_json_layout(indent):
    raw = make_nb(("markdown", "# é"), ("code", "a = 1\nb = 2\n"), ("code", "c = 3"), indent=indent)
    book = notebook.parse("x.ipynb", raw)
    assert book.with_sources({}) == raw
    new = book.with_sources({2: "a = 10\nb = 2\n"})
    assert new == raw.replace('"a = 1\\n"', '"a = 10\\n"')
    assert json.loads(new)["cells"][1]["source"] == ["a = 10\n", "b = 2\n"]


@pytest.mark.slow
def test_dynamic_passes_run_the_cells_program_safely(tmp_path):
    """The probe sees a model defined across cells; a cell that trains and writes a file
    at top level is not run (the loader's script filter), and nothing lands beside the notebook."""
    model = (
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc1 = nn.Linear(16, 32)\n"
        "        self.fc2 = nn.Linear(32, 4)\n"
        "        self.fc1.weight.data.fill_(100)\n"
        "\n"
        "    def forward(self, x):\n"
        "        return self.fc2(torch.relu(self.fc1(x)))\n"
    )
    work = (
        "model = Net()\n"
        "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "for step in range(3):\n"
        "    open('written_by_training.txt', 'w').write('trained')\n"
    )
    p = tmp_path / "dyn.ipynb"
    p.write_text(make_nb(("code", IMPORTS), ("markdown", "## model"), ("code", model), ("code", work)))
    before = sorted(x.name for x in tmp_path.iterdir())
    code, out, err = run("--isolated", "--format", "json", str(p))
    doc = json.loads(out)
    assert not (tmp_path / "written_by_training.txt").exists()
    assert sorted(x.name for x in tmp_path.iterdir()) == before
    assert doc["summary"]["models"] >= 1, err
    dyn = [d for d in doc["diagnostics"] if d["pass"] in ("graph", "probe")]
    assert dyn, out
    assert all(d["path"] == str(p) and d.get("cell") == 3 for d in dyn), dyn


def test_nbformat_warnings_do_not_reach_the_user(tmp_path):
    raw = json.loads(make_nb(("code", IMPORTS), ("code", MODEL)))
    for c in raw["cells"]:
        del c["id"]  # nbformat 4.5 wants ids; nbformat warns (MissingIDFieldWarning)
    p = tmp_path / "noid.ipynb"
    p.write_text(json.dumps(raw))
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "nnlint", "--static", "--select", "NN109", str(p)],
                          capture_output=True, text=True, timeout=120)
    assert "cell 2:7:13: NN109" in proc.stdout
    assert proc.stderr == ""
