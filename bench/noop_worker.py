"""A worker that does nothing, for measuring herd's own job overhead."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "adapters", "python"))
import herd_worker  # noqa: E402

herd_worker.run(train=lambda req: None, input=lambda req: None, output=lambda req: [])
