"""graph rules."""
