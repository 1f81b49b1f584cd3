"""The conformance run: suites (`suite`), tasks on the wire (`wire`), the worker loop (`worker`),
divergence metrics (`metrics`) and the runner that ties them together (`runner`)."""
