"""source rules."""
