"""validation tables and repositories (filled in by the validation work)."""
