"""The client side stays light: no server, numpy, Starlette or torch behind an import, and
none of them but numpy behind a command that does not serve (chunking finds sentence
boundaries and counts words with numpy, a core dependency, imported on the first text
chunked); no import cycle; nobody else's loggers touched on import."""

import json
import os
import subprocess
import sys

import pytest

from hf_endpoint.server import LocalEndpoint

SERVER_SIDE = (
    "numpy",
    "starlette",
    "uvicorn",
    "torch",
    "sentence_transformers",
    "transformers",
    "tokenizers",
)


def modules_after(code):
    """The modules a fresh interpreter holds after running ``code``."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True, timeout=120
    )
    return set(json.loads(result.stdout.splitlines()[-1]))


def server_side(modules, but=()):
    return sorted(
        m
        for m in modules
        if (m.split(".")[0] in SERVER_SIDE and m.split(".")[0] not in but)
        or m.startswith("hf_endpoint.server")
    )


@pytest.mark.parametrize("package", ["hf_endpoint", "langchain_hf_endpoint"])
def test_importing_the_client_loads_nothing_of_the_server(package):
    assert server_side(modules_after(f"import {package}")) == []


def test_the_llama_index_adapter_adds_nothing_to_what_llama_index_loads():
    # llama-index-core imports numpy itself: only what the adapter adds counts.
    ours = modules_after("import llama_index_hf_endpoint")
    theirs = sorted(m for m in ours if m.startswith("llama_index."))
    baseline = modules_after(f"import importlib\nfor m in {theirs!r}: importlib.import_module(m)")
    assert server_side(ours - baseline) == []
    assert "torch" not in ours


def run_cli(args, tmp_path):
    """``hf-endpoint ARGS`` in a fresh interpreter; the modules it held at the end."""
    dump = tmp_path / "modules.json"
    script = (
        "import json, sys\n"
        "from hf_endpoint.cli import main\n"
        f"status = main({args!r})\n"
        f"open({str(dump)!r}, 'w').write(json.dumps(sorted(sys.modules)))\n"
        "sys.exit(status)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(dump.read_text()))


def test_hf_endpoint_chunk_loads_nothing_of_the_server(tmp_path):
    text = tmp_path / "doc.txt"
    text.write_text("One sentence. Another one.", "utf-8")
    assert server_side(run_cli(["chunk", str(text)], tmp_path), but=["numpy"]) == []


def test_hf_endpoint_embed_loads_nothing_of_the_server(tmp_path):
    records = tmp_path / "in.jsonl"
    records.write_text('{"id": "a", "text": "One sentence. Another one."}\n', "utf-8")
    with LocalEndpoint("hash") as ep:
        args = ["embed", str(records), "-o", str(tmp_path / "out.jsonl"), "--url", ep.url]
        modules = run_cli([*args, "--quiet"], tmp_path)
    assert server_side(modules, but=["numpy"]) == []
    assert json.loads((tmp_path / "out.jsonl").read_text())["id"] == "a"


def test_the_command_line_and_the_server_do_not_import_each_other():
    cli = modules_after("import hf_endpoint.cli")
    assert not any(m.startswith("hf_endpoint.server") for m in cli)
    assert "hf_endpoint.cli" not in modules_after("import hf_endpoint.server")


LOGGERS = """
import importlib, json, logging
for name in ("httpx", "httpcore", "starlette.applications", "uvicorn", "uvicorn.config",
             "numpy", "langchain_core.embeddings", "llama_index.core"):
    importlib.import_module(name)

def state():
    loggers = dict(logging.Logger.manager.loggerDict, root=logging.getLogger())
    return {
        name: [lg.level, lg.propagate, lg.disabled,
               [type(h).__name__ for h in lg.handlers], [type(f).__name__ for f in lg.filters]]
        for name, lg in loggers.items() if isinstance(lg, logging.Logger)
    }

before = state()
for name in ("hf_endpoint", "hf_endpoint.cli", "hf_endpoint.server", "hf_endpoint.server._local",
             "langchain_hf_endpoint", "llama_index_hf_endpoint"):
    importlib.import_module(name)
after = state()
print(json.dumps({name: [was, after[name]] for name, was in before.items() if after[name] != was}))
"""


def test_importing_changes_no_other_librarys_loggers():
    result = subprocess.run(
        [sys.executable, "-c", LOGGERS],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert json.loads(result.stdout.splitlines()[-1]) == {}
