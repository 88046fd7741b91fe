"""``python -m hf_endpoint.server``: the same as ``hf-endpoint serve``."""

import sys

from ._command import main

sys.exit(main(sys.argv[1:], prog="python -m hf_endpoint.server"))
