"""Comparisons that need no framework: parity across implementations at every gradient scale
(`parity`, `attribution`), verified translation (`translate`), side-by-side semantics (`explain`)
and the seed document's examples (`seed_example`)."""
