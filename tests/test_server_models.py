"""Any local sentence-transformers folder: TEI's limits read from its files, served offline."""

import json
import os
import subprocess
import sys

import httpx
import numpy as np
import pytest

from hf_endpoint.server import LocalEndpoint, ModelFolder


def write(path, content):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content) if not isinstance(content, str) else content, "utf-8")


def folder(tmp_path, config, files=()):
    """A model folder holding only the files TEI reads for its limits."""
    write(tmp_path / "config.json", config)
    write(tmp_path / "modules.json", [])
    write(tmp_path / "tokenizer.json", "{}")
    for name, content in dict(files).items():
        write(tmp_path / name, content)
    return tmp_path


BERT = {"model_type": "bert", "max_position_embeddings": 512, "pad_token_id": 0}


# --- router/src/lib.rs: how TEI derives max_input_length from a model's files --------------


def test_max_seq_length_of_the_sentence_transformers_config_wins(tmp_path):
    path = folder(tmp_path, BERT, {"sentence_bert_config.json": {"max_seq_length": 256}})
    assert ModelFolder.read(path).max_input_length == 256


def test_older_sentence_transformers_config_names_count(tmp_path):
    """core/src/download.rs ``ST_CONFIG_NAMES``."""
    path = folder(tmp_path, BERT, {"sentence_xlm-roberta_config.json": {"max_seq_length": 128}})
    assert ModelFolder.read(path).max_input_length == 128


def test_without_max_seq_length_the_position_embeddings_are_the_limit(tmp_path):
    assert ModelFolder.read(folder(tmp_path, BERT)).max_input_length == 512
    write(tmp_path / "sentence_bert_config.json", {"do_lower_case": False})
    assert ModelFolder.read(tmp_path).max_input_length == 512


@pytest.mark.parametrize("model_type", ["roberta", "xlm-roberta", "camembert"])
def test_roberta_like_models_lose_their_position_offset(tmp_path, model_type):
    config = {"model_type": model_type, "max_position_embeddings": 514, "pad_token_id": 1}
    assert ModelFolder.read(folder(tmp_path, config)).max_input_length == 512


def test_n_positions_is_read_as_max_position_embeddings(tmp_path):
    config = {"model_type": "gpt2", "n_positions": 1024}
    assert ModelFolder.read(folder(tmp_path, config)).max_input_length == 1024


def test_prompts_and_pooling_come_from_the_folder(tmp_path):
    st_config = {"prompts": {"query": "q: "}, "default_prompt_name": "query"}
    files = {
        "config_sentence_transformers.json": st_config,
        "1_Pooling/config.json": {"pooling_mode_cls_token": True},
    }
    path = folder(tmp_path, BERT, files)
    read = ModelFolder.read(path)
    assert read.prompts == {"query": "q: "} and read.pooling == "cls"
    write(path / "1_Pooling/config.json", {"pooling_mode_lasttoken": True})
    assert ModelFolder.read(path).pooling == "last_token"
    write(path / "config_sentence_transformers.json", {"__version__": {}})
    assert ModelFolder.read(path).prompts is None


@pytest.mark.parametrize(
    "missing,message",
    [
        ("config.json", "has no config.json"),
        ("modules.json", "has no modules.json: not a sentence-transformers model folder"),
        ("tokenizer.json", "has no tokenizer.json: only fast tokenizers"),
    ],
)
def test_an_incomplete_folder_is_named(tmp_path, missing, message):
    path = folder(tmp_path, BERT)
    (path / missing).unlink()
    with pytest.raises(ValueError, match=message):
        ModelFolder.read(path)


def test_a_folder_that_is_not_there_is_named(tmp_path):
    with pytest.raises(ValueError, match="does not exist or is not a directory"):
        ModelFolder.read(tmp_path / "nowhere")


# --- a second real model, built from the bundled one -----------------------------------------


@pytest.fixture(scope="module")
def short_model(tmp_path_factory):
    """all-MiniLM-L6-v2 saved with max_seq_length 128 and two prompts (weights linked)."""
    pytest.importorskip("sentence_transformers", reason="the minilm extra is not installed")
    from hf_endpoint.server.backends import bundled_minilm_path

    path = tmp_path_factory.mktemp("short-minilm")
    for item in bundled_minilm_path().iterdir():
        if item.name not in ("sentence_bert_config.json", "config_sentence_transformers.json"):
            (path / item.name).symlink_to(item)
    write(path / "sentence_bert_config.json", {"max_seq_length": 128, "do_lower_case": False})
    prompts = {"query": "query: ", "passage": "passage: "}
    write(
        path / "config_sentence_transformers.json",
        {"prompts": prompts, "default_prompt_name": "query"},
    )
    return path


def test_serve_model_reports_its_limits_and_downloads_nothing(short_model, tmp_path):
    """``hf-endpoint serve --model DIR --device auto``, with a hub that cannot be reached and
    offline mode off: the folder alone serves."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "0",
        "TRANSFORMERS_OFFLINE": "0",
        "HF_ENDPOINT": "http://127.0.0.1:9",  # nothing listens there
        "HF_HOME": str(tmp_path / "empty-hf-home"),
    }
    command = [sys.executable, "-m", "hf_endpoint.cli", "serve", "--model", str(short_model)]
    process = subprocess.Popen(
        [*command, "--device", "auto", "--port", "0"], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("hf-endpoint server listening on "), line
        url = line.rsplit(" ", 1)[1].strip()
        info = httpx.get(url + "/info", timeout=30).json()
        assert info["model_id"] == info["served_model_name"] == str(short_model)
        assert info["max_input_length"] == 128
        assert info["model_dtype"] == "float32"
        body = {"inputs": "word " * 200, "truncate": False}
        too_long = httpx.post(url, json=body, timeout=60)
        assert too_long.status_code == 422
        assert "must have less than 128 tokens. Given: 202" in too_long.json()["error"]
        # the folder's prompts, and no default prompt applied (TEI reads only `prompts`)
        prompted = httpx.post(url, json={"inputs": "x", "prompt_name": "query"}).json()
        spelled = httpx.post(url, json={"inputs": "query: x"}).json()
        plain = httpx.post(url, json={"inputs": "x"}).json()
        np.testing.assert_allclose(prompted, spelled, atol=1e-6)
        assert not np.allclose(prompted, plain, atol=1e-3)
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stdout.close()


def test_float16_serves_close_to_float32(short_model):
    texts = ["A man is playing a guitar.", "The bank raised rates."]
    with LocalEndpoint(model=short_model, device="cpu", dtype="float16") as ep:
        assert httpx.get(ep.url + "/info").json()["model_dtype"] == "float16"
        half = np.array(httpx.post(ep.url, json={"inputs": texts}, timeout=60).json())
    with LocalEndpoint(model=short_model, device="cpu") as ep:
        full = np.array(httpx.post(ep.url, json={"inputs": texts}, timeout=60).json())
    np.testing.assert_allclose(half, full, atol=1e-2)


def test_a_missing_cuda_device_is_a_one_line_error(short_model):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    result = subprocess.run(
        [sys.executable, "-m", "hf_endpoint.server", "--model", str(short_model)]
        + ["--device", "cuda", "--port", "0"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert (
        result.stderr
        == "hf-endpoint: error: device 'cuda' was asked for, but torch sees no CUDA device\n"
    )
