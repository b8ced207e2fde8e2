"""Test suite (a package, so test modules import as tests.* and never shadow project packages)."""
