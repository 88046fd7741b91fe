"""The documentation runs: every Python block of the README as written, each in a fresh
interpreter against the local endpoint it starts, and the API reference builds from the
docstrings with warnings as errors."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def readme_blocks():
    """``(heading, code)`` for every ```` ```python ```` block of the README."""
    text = (ROOT / "README.md").read_text("utf-8")
    blocks = []
    for match in re.finditer(r"^```python\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE):
        headings = re.findall(r"^#+ (.+)$", text[: match.start()], flags=re.MULTILINE)
        blocks.append((headings[-1], match.group(1)))
    return blocks


BLOCKS = readme_blocks()


def clean_env():
    """No endpoint or token from the caller's environment: the blocks bring their own."""
    hidden = ("HF_ENDPOINT_URL", "HF_TOKEN", "HUGGINGFACEHUB_API_TOKEN")
    return {k: v for k, v in os.environ.items() if k not in hidden}


def test_the_readme_has_python_blocks_and_an_install_line():
    assert len(BLOCKS) >= 7
    assert "pip install hf-endpoint" in (ROOT / "README.md").read_text("utf-8")


def stated_outputs(code):
    """What a block says it prints: ``print(...)  # 384`` states the line ``384``.

    A comment that starts with a digit states an output (a note in parentheses after it is
    not part of it); a comment in words (``# the read view``) states none.
    """
    return [m.group(1).strip() for m in re.finditer(r"print\(.*\)\s+# (\d[^(\n]*)", code)]


def test_the_readme_states_outputs_that_are_checked():
    stated = [line for _, code in BLOCKS for line in stated_outputs(code)]
    assert "384" in stated and "11 chunks" in stated


@pytest.mark.parametrize(
    "code", [code for _, code in BLOCKS], ids=[f"{i}-{h}" for i, (h, _) in enumerate(BLOCKS)]
)
def test_readme_python_block_runs_as_written(code, tmp_path):
    script = tmp_path / "block.py"
    script.write_text(code, "utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    printed = iter(done.stdout.splitlines())
    for line in stated_outputs(code):  # in the order the block states them
        assert any(out.strip() == line for out in printed), (line, done.stdout)


def test_the_api_reference_builds_without_warnings(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "api" / "core" / "index.html").read_text("utf-8")
    for name in ("EmbeddingClient", "ChunkingSettings", "chunk_text", "InferenceEndpoints"):
        assert f'id="hf_endpoint.{name}"' in page
    for package, name in [
        ("langchain", "langchain_hf_endpoint.HFEndpointEmbeddings"),
        ("llama_index", "llama_index_hf_endpoint.HFEndpointNodeParser"),
        ("server", "hf_endpoint.server.LocalEndpoint"),
    ]:
        assert f'id="{name}"' in (tmp_path / "api" / package / "index.html").read_text("utf-8")
