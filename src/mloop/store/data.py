"""data tables and repositories (filled in by the data work)."""
