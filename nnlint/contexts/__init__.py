"""The public, typed contexts each pass hands its rules."""
