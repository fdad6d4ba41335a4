"""nnlint's rules, one file per rule. Installed as ``nnlint.rules`` (setuptools
package-dir); there is no top-level ``rules`` package."""

if __name__ != "nnlint.rules":
    raise ImportError("the rules folder is installed as nnlint.rules; import nnlint.rules instead of rules")
