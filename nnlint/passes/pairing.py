"""Which loss goes with which model: by value flow in the user's file.

A loss is paired with a model only when the file applies that loss to that model's output:
``criterion(model(x), y)``, ``out = net(x); loss = loss_fn(out.view(-1), y)``,
``loss_fn(D(fake), ones)`` (paired with ``D``, not with the ``G`` that made ``fake``).
A model whose output no loss reads gets no loss name (the probe then backpropagates a
neutral objective), and a head that is not a classifier (regression, Q-values, generators,
autoencoders) never gets a cross-entropy assumption.

Pure ``ast``: no torch import, no user code runs.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

#: ``nn.XLoss`` classes and ``F.x`` functions, by the name the probe and rules use
_LOSS_FUNCS = {
    "cross_entropy": "CrossEntropyLoss",
    "nll_loss": "NLLLoss",
    "binary_cross_entropy": "BCELoss",
    "binary_cross_entropy_with_logits": "BCEWithLogitsLoss",
    "mse_loss": "MSELoss",
    "l1_loss": "L1Loss",
    "smooth_l1_loss": "SmoothL1Loss",
    "huber_loss": "HuberLoss",
    "kl_div": "KLDivLoss",
    "cosine_embedding_loss": "CosineEmbeddingLoss",
    "margin_ranking_loss": "MarginRankingLoss",
    "triplet_margin_loss": "TripletMarginLoss",
    "ctc_loss": "CTCLoss",
    "poisson_nll_loss": "PoissonNLLLoss",
    "gaussian_nll_loss": "GaussianNLLLoss",
    "multilabel_soft_margin_loss": "MultiLabelSoftMarginLoss",
}
CLASSIFICATION_LOSSES = {"CrossEntropyLoss", "NLLLoss"}

#: words of a class name that say "this head is not a classifier"
NON_CLASSIFIER_WORDS = {
    "q",
    "dqn",
    "ddqn",
    "dueling",
    "critic",
    "actor",
    "value",
    "generator",
    "autoencoder",
    "ae",
    "vae",
    "regressor",
    "regression",
    "denoiser",
    "denoising",
    "reconstruction",
}


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _loss_class(node: ast.AST) -> str | None:
    """``nn.MSELoss(...)`` / ``torch.nn.BCELoss()`` / ``MSELoss()`` -> its class name."""
    if isinstance(node, ast.Call):
        name = _dotted(node.func)
        if name:
            last = name.split(".")[-1]
            if last.endswith("Loss"):
                return last
    return None


def _loss_func(node: ast.AST) -> str | None:
    """``F.mse_loss`` / ``torch.nn.functional.cross_entropy`` -> the loss class name."""
    name = _dotted(node)
    if not name:
        return None
    return _LOSS_FUNCS.get(name.split(".")[-1])


def _model_class(node: ast.AST, classes: set[str]) -> str | None:
    """``Net(...)``, ``Net(...).to(device)``, ``Net(...).cuda()`` -> "Net"."""
    while isinstance(node, ast.Call):
        name = _dotted(node.func)
        if name and name.split(".")[-1] in classes:
            return name.split(".")[-1]
        if isinstance(node.func, ast.Attribute) and node.func.attr in (
            "to",
            "cuda",
            "cpu",
            "float",
            "double",
            "half",
            "train",
            "eval",
            "apply",
        ):
            node = node.func.value
            continue
        return None
    return None


@dataclass
class Pairing:
    #: model class -> loss class names applied to its output, in file order
    losses: dict[str, list[str]] = field(default_factory=dict)
    #: every loss the file applies to some model's output
    any_paired: bool = False
    #: model class -> the line of the first loss call applied to its output
    lines: dict[str, int] = field(default_factory=dict)
    #: model class -> classes whose output it consumes (G's output fed to D: G -> {D})
    feeds: dict[str, set[str]] = field(default_factory=dict)

    def loss_for(self, cls: str) -> str | None:
        found = self.losses.get(cls)
        return found[0] if found else None


class _Flow(ast.NodeVisitor):
    def __init__(self, classes: set[str], instances: set[str] | frozenset[str] = frozenset()) -> None:
        self.classes = classes
        self.instances = set(instances)
        self.models: dict[str, str] = {}  # variable (dotted) -> model class
        self.loss_vars: dict[str, str] = {}  # variable (dotted) -> loss class
        self.result = Pairing()

    # the first pass: which names hold models and which hold losses (anywhere in the file)
    def collect(self, tree: ast.AST) -> None:
        for node in ast.walk(tree):
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    name = _dotted(t)
                    if not name:
                        continue
                    short = name.split(".", 1)[1] if name.startswith("self.") else name
                    cls = _model_class(node.value, self.classes)
                    if cls is None and name in self.instances:
                        cls = name  # model = nn.Sequential(...): the variable names the model
                    if cls:
                        self.models[name] = cls
                        self.models.setdefault(short, cls)
                    loss = _loss_class(node.value) or _loss_func(node.value)
                    if loss:
                        self.loss_vars[name] = loss
                        self.loss_vars.setdefault(short, loss)

    def _model_of_call(self, call: ast.Call) -> str | None:
        name = _dotted(call.func)
        if name is None:
            return None
        if name in self.models:
            return self.models[name]
        if name.startswith("self.") and name[5:] in self.models:
            return self.models[name[5:]]
        if name.endswith((".forward", ".module")) and name.rsplit(".", 1)[0] in self.models:
            return self.models[name.rsplit(".", 1)[0]]
        return None

    def sources(self, node: ast.AST | None, env: dict[str, set[str]]) -> set[str]:
        """The model classes whose output this expression carries (the outermost model
        call wins: ``D(G(z))`` carries D's output only)."""
        if node is None:
            return set()
        if isinstance(node, ast.Call):
            m = self._model_of_call(node)
            if m is not None:
                for a in list(node.args) + [k.value for k in node.keywords]:
                    for src in self.sources(a, env):
                        self.result.feeds.setdefault(src, set()).add(m)
                return {m}
            out: set[str] = set()
            if isinstance(node.func, ast.Attribute):
                out |= self.sources(node.func.value, env)
            for a in list(node.args) + [k.value for k in node.keywords]:
                if isinstance(node.func, (ast.Name, ast.Attribute)) and self._is_loss_call(node):
                    continue
                out |= self.sources(a, env)
            return out
        if isinstance(node, (ast.Name, ast.Attribute)):
            name = _dotted(node)
            if name is not None and name in env:
                return set(env[name])
            if isinstance(node, ast.Attribute):
                return self.sources(node.value, env)
            return set()
        if isinstance(node, (ast.Lambda, ast.FunctionDef)):
            return set()
        out = set()
        for child in ast.iter_child_nodes(node):
            out |= self.sources(child, env)
        return out

    def _is_loss_call(self, call: ast.Call) -> str | None:
        name = _dotted(call.func)
        if name is not None:
            if name in self.loss_vars:
                return self.loss_vars[name]
            if name.startswith("self.") and name[5:] in self.loss_vars:
                return self.loss_vars[name[5:]]
            f = _loss_func(call.func)
            if f:
                return f
        if isinstance(call.func, ast.Call):
            return _loss_class(call.func)  # nn.MSELoss()(out, y)
        return None

    def run_body(self, body: list[ast.stmt], env: dict[str, set[str]]) -> None:
        for stmt in body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.run_body(stmt.body, dict(env))
                continue
            if isinstance(stmt, ast.ClassDef):
                if stmt.name in self.classes:
                    continue  # a model's own forward: its submodules are not "models"
                for sub in stmt.body:
                    if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        self.run_body(sub.body, dict(env))
                continue
            # loss calls in this statement (a compound statement's own header only: its body
            # is visited below, in order, with the names bound before it)
            heads = (
                [stmt]
                if not hasattr(stmt, "body")
                else [getattr(stmt, f) for f in ("test", "iter", "items") if getattr(stmt, f, None) is not None]
            )
            for node in (
                n
                for h in heads
                for n in (ast.walk(h) if isinstance(h, ast.AST) else (x for item in h for x in ast.walk(item)))
            ):
                if isinstance(node, ast.Call):
                    loss = self._is_loss_call(node)
                    if loss and node.args:
                        for src in self.sources(node.args[0], env):
                            lst = self.result.losses.setdefault(src, [])
                            if loss not in lst:
                                lst.append(loss)
                            self.result.lines.setdefault(src, node.lineno)
                            self.result.any_paired = True
            # assignments carry the value flow on
            if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and stmt.value is not None:
                srcs = self.sources(stmt.value, env)
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                for t in targets:
                    for el in t.elts if isinstance(t, (ast.Tuple, ast.List)) else [t]:
                        name = _dotted(el.value if isinstance(el, ast.Starred) else el)
                        if name is None:
                            continue
                        if isinstance(stmt, ast.AugAssign):
                            env[name] = env.get(name, set()) | srcs
                        else:
                            env[name] = set(srcs)
            for field_ in ("body", "orelse", "finalbody", "handlers"):
                block = getattr(stmt, field_, None)
                if isinstance(block, list) and block and isinstance(block[0], (ast.stmt, ast.excepthandler)):
                    inner: list[ast.stmt] = []
                    for s in block:
                        inner.extend(s.body if isinstance(s, ast.ExceptHandler) else [s])
                    if isinstance(stmt, (ast.For, ast.AsyncFor, ast.With, ast.AsyncWith)) and field_ == "body":
                        # `for x, y in loader:` / `with torch.no_grad():` bind nothing from models
                        pass
                    self.run_body(inner, env)


def pair_losses(text: str, classes: set[str], instances: set[str] | frozenset[str] = frozenset()) -> Pairing:
    """Which losses the file applies to the output of which of ``classes`` (class or
    factory names) and of the module-level model ``instances`` (variable names)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return Pairing()
    flow = _Flow(set(classes), instances)
    flow.collect(tree)
    flow.run_body(tree.body, {})
    return flow.result


def model_classes(text: str) -> set[str]:
    """The file's classes and module-level functions (factories build models too)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return set()
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)} | {
        n.name for n in tree.body if isinstance(n, ast.FunctionDef)
    }


def looks_non_classifier(name: str) -> bool:
    """``DuelingQNet``, ``QNetwork``, ``Generator``, ``ConvAutoEncoder``, ``Critic`` ..."""
    words = re.findall(r"[A-Z]+(?=[A-Z][a-z]|[0-9_]|$)|[A-Z]?[a-z]+|[0-9]+", name or "")
    words = [w.lower() for w in words]
    joined = "".join(words)
    return any(w in NON_CLASSIFIER_WORDS for w in words) or "autoencoder" in joined


def apply(cands: list, text: str) -> None:
    """Set each discovered candidate's loss from the file's value flow.

    A loss the user declared (pyproject, nnlint_examples()) is kept. Otherwise:
    - the file applies a loss to this model's output: that loss (``loss_source = "file"``);
    - the file applies losses, but to other models only (a GAN's generator), or the model's
      output feeds another model: no loss, neutral objective;
    - the file shows no pairing at all: a classification loss named in the file is not
      assumed for a head whose name says it is not a classifier (Q-network, generator,
      autoencoder, regressor); other file-level loss names stay, marked as guessed."""
    classes = model_classes(text)
    instances = {c.name for c in cands if (getattr(c, "meta", None) or {}).get("instance")}
    if not classes and not instances:
        return
    pairing = pair_losses(text, classes, instances)
    for c in cands:
        if getattr(c, "origin", "") == "examples" or getattr(c, "loss", None) is not None:
            continue
        cls_name = c.cls.__name__ if getattr(c, "cls", None) is not None else c.name
        paired = pairing.loss_for(cls_name)
        if paired:
            c.loss_name = paired
            c.meta["loss_source"] = "file"
            c.meta["loss_line"] = pairing.lines.get(cls_name)
            continue
        if pairing.any_paired or cls_name in pairing.feeds or looks_non_classifier(cls_name):
            c.loss_name = None
            c.meta["objective"] = "neutral"
            c.meta["loss_source"] = "guessed"
            why = (
                "its output feeds " + ", ".join(sorted(pairing.feeds[cls_name]))
                if cls_name in pairing.feeds
                else "the file applies its losses to other models"
                if pairing.any_paired
                else "its name says it is not a classifier"
            )
            c.meta["objective_why"] = why
            continue
        if c.loss_name:
            c.meta["loss_source"] = "guessed"
