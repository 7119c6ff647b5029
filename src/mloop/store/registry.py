"""registry tables and repositories (filled in by the registry work)."""
