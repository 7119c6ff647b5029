"""serving tables and repositories (filled in by the serving work)."""
