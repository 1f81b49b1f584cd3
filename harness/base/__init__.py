"""The foundation every other part stands on: table schemas, resource limits, options, gradient streams,
run folders on disk, the machine fingerprint and the environment a run records. Imports nothing else of
the harness."""
