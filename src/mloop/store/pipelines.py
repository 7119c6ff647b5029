"""pipelines tables and repositories (filled in by the pipelines work)."""
