import importlib.util
import os
from pathlib import Path

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
