"""The warm worker (nnlint.passes.zygote): children are really forked from the zygote and
the zygote stays warm, and a cancelled run (the language server's newer save) kills its
children at once. NN005 (time limit, memory guard, crashes) and the sandbox under the warm
worker are covered by test_runner.py, which runs with it on (the default)."""

from __future__ import annotations

import os
import threading
import time

import pytest

from nnlint import config, engine, registry
from nnlint.passes import runner, zygote

pytestmark = pytest.mark.slow

MODEL = """import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        {body}
        return self.fc(x)


def nnlint_examples():
    return [{{"model": Net(), "inputs": torch.randn(8, 4)}}]
"""


def _run(path, cfg=None, opts=None):
    cfg = cfg or config.Config()
    rules = registry.select(None, [], [])
    text = path.read_text()
    return runner.run_dynamic([str(path)], {str(path): text}, cfg, opts or engine.Options(), rules)


@pytest.fixture
def warm(monkeypatch):
    monkeypatch.setenv("NNLINT_WARM_WORKER", "1")
    monkeypatch.setattr(zygote, "_broken", None)
    if not zygote.usable():
        pytest.skip("fork is not used on this platform")
    yield
    zygote.shutdown()


def test_children_are_forked_and_isolated(warm, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "m.py"
    path.write_text(MODEL.format(body="pass"))
    spawned = []
    real = zygote.spawn

    def spy(req, folder, env=None):
        proc = real(req, folder, env)
        spawned.append((proc, folder))
        return proc

    monkeypatch.setattr(zygote, "spawn", spy)
    result = _run(path)
    assert result.models == 1 and not result.errors, (result.errors, result.notes)
    (proc, folder), = spawned
    assert isinstance(proc, zygote.ForkedProc), zygote.why_not()
    assert proc.returncode == 0
    assert not os.path.exists(folder)  # the private folder went with the child
    assert zygote._zygote is not None and zygote._zygote.alive()  # warm for the next file


def test_cancel_kills_the_running_child(warm, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "slow.py"
    path.write_text(MODEL.format(body="import time; time.sleep(900)"))
    opts = engine.Options()
    opts.cancel = threading.Event()  # type: ignore[attr-defined]
    pids = []
    real = runner.start_child

    def spy(*a, **k):
        child = real(*a, **k)
        pids.append(child.proc.pid)
        threading.Timer(3.0, opts.cancel.set).start()  # type: ignore[attr-defined]
        return child

    monkeypatch.setattr(runner, "start_child", spy)
    cfg = config.Config()
    cfg.timeout = 300
    t = time.monotonic()
    result = _run(path, cfg, opts)
    # ended by the cancel: before the time limit (which would give NN005) and the sleep
    assert time.monotonic() - t < cfg.timeout
    assert not [d for d in result.diagnostics if d.code == "NN005"]  # cancelled is not a crash
    time.sleep(0.5)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
