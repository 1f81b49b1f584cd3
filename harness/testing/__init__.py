"""Testing front ends: the pytest plugin (`harness.testing.plugin`)."""
