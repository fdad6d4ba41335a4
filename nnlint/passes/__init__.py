"""The passes: source (libcst, static), and the dynamic ones (graph, probe, data) that run
user code in a child process (runner -> worker)."""
