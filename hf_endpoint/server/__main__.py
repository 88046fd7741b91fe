"""``python -m hf_endpoint.server``: the same as ``hf-endpoint serve``."""

import sys

from ..cli import main

sys.exit(main(["serve", *sys.argv[1:]]))
