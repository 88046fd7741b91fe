"""The hf-endpoint command line: chunk and demo, errors as one line."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

from hf_endpoint import chunk_offsets, chunk_text
from hf_endpoint.cli import main
from hf_endpoint.demo import run_demo
from hf_endpoint.server import Faults, HashBackend, LocalEndpoint


def test_chunk_jsonl_gives_offsets_into_each_record(tmp_path, capsys):
    texts = ["First one. Second sentence here.", "日本語のテキストです。二つ目の文。"]
    src = tmp_path / "in.jsonl"
    src.write_text(
        "".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(texts)), "utf-8"
    )
    assert (
        main(["chunk", "--strategy", "word", "--max-chunk-size", "10", "--overlap", "2", str(src)])
        == 0
    )
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in rows] == ["d0", "d1"]
    for row, text in zip(rows, texts):
        assert text[row["start"] : row["end"]] == row["text"]
        assert [(row["start"], row["end"])] == chunk_offsets(
            text, {"strategy": "word", "max_chunk_size": 10, "overlap": 2}
        )


def test_chunk_plain_text_file_is_one_document(tmp_path, capsys):
    src = tmp_path / "doc.txt"
    src.write_text("word " * 30, "utf-8")
    assert (
        main(["chunk", "--strategy", "word", "--max-chunk-size", "10", "--overlap", "5", str(src)])
        == 0
    )
    assert len(capsys.readouterr().out.splitlines()) == 5


def test_bad_jsonl_line_is_named_and_earlier_records_are_kept(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "fine"}\n{"text": \n', "utf-8")
    assert main(["chunk", str(src)]) == 2
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 1
    assert captured.err.startswith(f"hf-endpoint: error: {src}:2: not valid JSON")
    assert "Traceback" not in captured.err


def test_invalid_settings_are_one_line(capsys, tmp_path):
    assert main(["chunk", "--strategy", "word", "--max-chunk-size", "5", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "[max_chunk_size] must be greater than or equal to [10]" in err


MARKDOWN_DOC = (
    "# Title\n\nIntro paragraph with some words in it. Another sentence here.\n\n"
    "## Section A\n\nText of section A goes on for a while with many words to fill the chunk.\n"
    "A second line.\n\n## Section B\n\nShort.\n"
)


def test_chunk_with_the_recursive_strategy(tmp_path, capsys):
    src = tmp_path / "doc.md"
    src.write_text(MARKDOWN_DOC, "utf-8")
    recursive = ["chunk", "--strategy", "recursive", "--max-chunk-size", "10"]
    assert main([*recursive, "--separator-group", "markdown", str(src)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["start"], r["end"]) for r in rows] == [
        (0, 48), (48, 71), (71, 86), (86, 128), (111, 159), (159, 174), (174, 196)
    ]  # fmt: skip
    assert (
        main([*recursive[:-1], "20", "--separator", "\\n\\n", "--separator", "\\n", str(src)]) == 0
    )
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["start"], r["end"]) for r in rows] == [(0, 84), (84, 173), (173, 196)]
    assert main([*recursive, "--separators", "(?i)x", str(src)]) == 2
    assert "Chunk separator regex [(?i)x] cannot be matched" in capsys.readouterr().err


def test_missing_file_is_one_line(capsys, tmp_path):
    assert main(["chunk", str(tmp_path / "absent.txt")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_demo_runs_offline_and_finds_the_right_documents(monkeypatch):
    monkeypatch.delenv("HF_ENDPOINT_URL", raising=False)
    lines = []
    hits = run_demo(lines.append)
    expected = ["en-bike", "en-tea", "zh-panda", "zh-train"]
    assert list(hits["langchain"].values()) == expected
    assert list(hits["llama_index"].values()) == expected
    assert list(hits["rerank"].values()) == expected  # retrieved, then reranked via /rerank
    output = "\n".join(lines)
    assert "starting a local endpoint" in output and "en-tea [0:" in output


# --- hf-endpoint embed ---------------------------------------------------------------


WORDS = {"strategy": "word", "max_chunk_size": 10, "overlap": 3}


def write_records(path, n):
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            f.write(
                json.dumps(
                    {"id": f"rec-{i}", "text": f"Record number {i} says hello. " * (1 + i % 4)}
                )
                + "\n"
            )


def embed_command(source, output, url, *extra):
    return [
        sys.executable, "-m", "hf_endpoint.cli", "embed", str(source), "-o", str(output), "--url", url,
        "--strategy", "word", "--max-chunk-size", "10", "--overlap", "3", "--batch-records", "50", "--quiet", *extra,
    ]  # fmt: skip


def test_embed_interrupted_and_resumed_gives_every_record_once(tmp_path):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_records(source, 5000)
    with LocalEndpoint("hash", faults=Faults(latency=0.01)) as ep:
        env = {**os.environ, "HF_TOKEN": ""}
        process = subprocess.Popen(embed_command(source, output, ep.url), env=env)
        deadline = time.monotonic() + 120
        while (
            not output.exists() or output.read_bytes().count(b"\n") < 1000
        ) and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
        interrupted = output.read_bytes().count(b"\n")
        assert 1000 <= interrupted < 5000
        done = subprocess.run(
            embed_command(source, output, ep.url, "--resume"), check=False, env=env, timeout=300
        )
        assert done.returncode == 0
    rows = [json.loads(line) for line in output.read_text("utf-8").splitlines()]
    assert sorted(r["id"] for r in rows) == sorted(f"rec-{i}" for i in range(5000))
    texts = {
        json.loads(line)["id"]: json.loads(line)["text"]
        for line in source.read_text("utf-8").splitlines()
    }
    hash_backend = HashBackend()
    for row in rows[::97]:
        text = texts[row["id"]]
        assert [(c["start"], c["end"]) for c in row["chunks"]] == [
            (c.start, c.end) for c in chunk_text(text, WORDS)
        ]
        for c in row["chunks"]:
            np.testing.assert_allclose(
                c["embedding"], hash_backend.vector(text[c["start"] : c["end"]]), rtol=1e-6
            )


def test_embed_refuses_to_overwrite_without_resume(tmp_path, capsys):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_records(source, 3)
    output.write_text("", "utf-8")
    assert (
        main(["embed", str(source), "-o", str(output), "--url", "http://127.0.0.1:9/", "--quiet"])
        == 2
    )
    assert "give --resume" in capsys.readouterr().err


def test_embed_stops_at_a_bad_line_keeping_what_came_before(tmp_path, capsys):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_records(source, 120)
    with source.open("a") as f:
        f.write("{not json\n")
    with LocalEndpoint("hash") as ep:
        assert main(["embed", str(source), "-o", str(output), "--url", ep.url, "--quiet"]) == 2
    assert capsys.readouterr().err.startswith(f"hf-endpoint: error: {source}:121: not valid JSON")
    assert output.read_text("utf-8").count("\n") == 120


def test_embed_from_an_inference_config_file(tmp_path):
    source, output, config = (
        tmp_path / "in.jsonl",
        tmp_path / "out.jsonl",
        tmp_path / "endpoint.json",
    )
    write_records(source, 10)
    with LocalEndpoint("hash", api_key="hf_cli_key") as ep:
        config.write_text(json.dumps({
            "service": "hugging_face",
            "service_settings": {"url": ep.url, "api_key": "hf_cli_key"},
            "chunking_settings": {"strategy": "sentence", "max_chunk_size": 20, "sentence_overlap": 0},
        }))  # fmt: skip
        assert (
            main(
                [
                    "embed",
                    str(source),
                    "-o",
                    str(output),
                    "--inference-config",
                    str(config),
                    "--quiet",
                ]
            )
            == 0
        )
    rows = [json.loads(line) for line in output.read_text("utf-8").splitlines()]
    assert [len(r["chunks"]) for r in rows[:4]] == [1, 1, 1, 1]


def test_embed_with_the_recursive_strategy(tmp_path):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text(json.dumps({"id": "md", "text": MARKDOWN_DOC}) + "\n", "utf-8")
    recursive = [
        "--strategy",
        "recursive",
        "--max-chunk-size",
        "10",
        "--separator-group",
        "markdown",
    ]
    with LocalEndpoint("hash") as ep:
        command = ["embed", str(source), "-o", str(output), "--url", ep.url, "--quiet", *recursive]
        assert main(command) == 0
    (row,) = [json.loads(line) for line in output.read_text("utf-8").splitlines()]
    assert [(c["start"], c["end"]) for c in row["chunks"]] == chunk_offsets(
        MARKDOWN_DOC, {"strategy": "recursive", "max_chunk_size": 10, "separator_group": "markdown"}
    )
    assert len(row["chunks"]) == 7


def test_embed_against_no_endpoint_is_one_line(tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    write_records(source, 1)
    env = {k: v for k, v in os.environ.items() if k != "HF_ENDPOINT_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "hf_endpoint.cli", "embed", str(source), "-o", str(tmp_path / "o.jsonl"), "--quiet"],
        check=False, capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        == "hf-endpoint: error: no endpoint: give --url, set HF_ENDPOINT_URL, or give --inference-config FILE"
    )


def test_embed_names_a_record_whose_text_cannot_be_sent(tmp_path, capsys):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text('{"id": "ok", "text": "fine"}\n{"id": "bad", "text": "x\\ud800y"}\n', "utf-8")
    with LocalEndpoint("hash") as ep:
        assert main(["embed", str(source), "-o", str(output), "--url", ep.url, "--quiet"]) == 2
    assert "record bad: the text holds a lone surrogate" in capsys.readouterr().err
    assert [json.loads(line)["id"] for line in output.read_text("utf-8").splitlines()] == ["ok"]
