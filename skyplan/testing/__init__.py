"""Test helpers shipped with the package so every layer uses the same fakes."""
