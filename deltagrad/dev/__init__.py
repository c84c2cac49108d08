"""Developer tools: checks the project runs on itself (not part of the public API)."""
