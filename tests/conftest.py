import importlib.util
import os
import signal
from pathlib import Path

# The command-line tests stop their children with Ctrl-C (SIGINT), as a user at a terminal
# does. A suite started as a background job of a non-interactive shell (`cmd &` in a
# script) inherits SIGINT ignored, and so would every child, which then never stops:
# the suite takes Ctrl-C as a terminal gives it, whoever started it.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# tiktoken downloads its encodings on first use; the machines running the tests have no
# internet, and llama-index-core ships the two encodings its own splitters use. Found
# without importing it, so that the core's tests run without the llama-index extra.
_llama_index = importlib.util.find_spec("llama_index.core")
if _llama_index is not None and _llama_index.origin is not None:
    os.environ.setdefault(
        "TIKTOKEN_CACHE_DIR", str(Path(_llama_index.origin).parent / "_static" / "tiktoken_cache")
    )

from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=200
)
settings.register_profile(
    "thorough", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=5000
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
