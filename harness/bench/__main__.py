"""``python -m harness.bench FD``: a bench worker (started by `harness.bench.run`)."""

import sys

from harness.bench.worker import main
from harness.process import spawn

spawn.worker_start()
sys.exit(main(int(sys.argv[1])))
