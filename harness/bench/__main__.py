"""``python -m harness.bench FD``: a bench worker (started by `harness.bench._spawn`)."""

import sys

from harness.bench import _worker_main
from harness.process import spawn

spawn.worker_start()
sys.exit(_worker_main(int(sys.argv[1])))
