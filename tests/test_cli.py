"""The hf-endpoint command line, run as users run it: the installed command in a subprocess,
against a local endpoint. Errors are one line and a documented exit status; nothing written is
lost; --resume never mixes two kinds of rows."""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hf_endpoint import ChunkingSettings, __version__, chunk_offsets, chunk_text
from hf_endpoint.cli import EXIT_STATUSES
from hf_endpoint.demo import run_demo
from hf_endpoint.ingest.records import IdIndex
from hf_endpoint.server import Faults, HashBackend, LocalEndpoint

from .endpoints import TEI_1_8, local_url

COMMAND = Path(sys.executable).parent / "hf-endpoint"
WORDS = {"strategy": "word", "max_chunk_size": 10, "overlap": 3}
WORD_OPTIONS = ["--strategy", "word", "--max-chunk-size", "10", "--overlap", "3"]


def no_endpoint_env():
    hidden = ("HF_ENDPOINT_URL", "HF_TOKEN", "HUGGINGFACEHUB_API_TOKEN")
    return {k: v for k, v in os.environ.items() if k not in hidden}


def hf_endpoint(*args, stdin=None, timeout=300, **kwargs):
    """Run the installed ``hf-endpoint`` command; its exit status, stdout and stderr."""
    return subprocess.run(
        [str(COMMAND), *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=kwargs.pop("env", no_endpoint_env()),
        **kwargs,
    )


def one_line_error(done, status):
    """The command failed with ``status`` and said why in one line, without a traceback."""
    assert done.returncode == status, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def write_records(path, n, start=0):
    with path.open("a", encoding="utf-8") as f:
        for i in range(start, start + n):
            f.write(
                json.dumps(
                    {"id": f"rec-{i}", "text": f"Record number {i} says hello. " * (1 + i % 4)}
                )
                + "\n"
            )


def rows_of(path):
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def sidecar_of(path):
    return json.loads(path.with_name(path.name + ".meta.json").read_text("utf-8"))


def embed(source, output, url, *extra, **kwargs):
    return hf_endpoint(
        "embed", source, "-o", output, "--url", url, *WORD_OPTIONS, "--quiet", *extra, **kwargs
    )


@pytest.fixture(scope="module")
def url():
    return local_url("hash")


# --- the command itself ------------------------------------------------------------------


def test_version():
    done = hf_endpoint("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"hf-endpoint {__version__}"


@pytest.mark.parametrize("command", [[], ["chunk"], ["embed"], ["serve"], ["demo"]])
def test_help_shows_examples_defaults_and_exit_statuses_without_markup(command):
    done = hf_endpoint(*command, "--help")
    assert done.returncode == 0
    text = done.stdout
    assert "``" not in text and ":func:" not in text
    assert "exit status:" in text and "130" in text and "interrupted" in text
    if command:
        assert "examples:\n  hf-endpoint " + command[0] in text
    if command in (["embed"], ["serve"]):
        assert "(default: " in text
    if command == ["embed"]:
        assert re.search(
            r"--batch-records N\s+records chunked and embedded per step \(default: 64\)", text
        )
    if command == ["serve"]:
        assert re.search(r"--port PORT\s+0 picks a free port \(default: 8080\)", text)
        assert re.search(
            r"--max-batch-tokens N\s+the most tokens .*\(default: 16384\)", text, re.DOTALL
        )


def test_every_serve_option_has_help_and_no_doubled_default():
    text = hf_endpoint("serve", "--help").stdout
    options = text[text.index("options:") : text.index("examples:")]
    entries = re.split(r"\n  (?=-)", options)[1:]
    assert len(entries) > 20
    for entry in entries:
        flag, _, helped = entry.partition(" ")
        assert re.search(r"[a-z]{3}", re.sub(r"\{[^}]*\}|[A-Z_]{2,}", "", helped)), entry
        assert entry.count("(default:") <= 1, entry
    for flag in ("--fault-429", "--max-batch-requests", "--tokenization-workers"):
        assert re.search(rf"{flag} [A-Z]+\s+\w+ \w+", text), flag


def test_every_exit_status_is_documented():
    text = (Path(__file__).parent.parent / "docs" / "cli.md").read_text("utf-8")
    for status, meaning in EXIT_STATUSES.items():
        assert f"| {status} | {meaning} |" in text


# --- hf-endpoint chunk ------------------------------------------------------------------


def test_chunk_jsonl_gives_offsets_into_each_record(tmp_path):
    texts = ["First one. Second sentence here.", "日本語のテキストです。二つ目の文。"]
    src = tmp_path / "in.jsonl"
    src.write_text(
        "".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(texts)), "utf-8"
    )
    done = hf_endpoint("chunk", *WORD_OPTIONS[:4], "--overlap", "2", src)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["id"] for r in rows] == ["d0", "d1"]
    for row, text in zip(rows, texts):
        assert text[row["start"] : row["end"]] == row["text"]
        assert [(row["start"], row["end"])] == chunk_offsets(
            text, {"strategy": "word", "max_chunk_size": 10, "overlap": 2}
        )


def test_chunk_plain_text_file_is_one_document(tmp_path):
    src = tmp_path / "doc.txt"
    src.write_text("word " * 30, "utf-8")
    done = hf_endpoint("chunk", *WORD_OPTIONS[:4], "--overlap", "5", src)
    assert done.returncode == 0
    assert len(done.stdout.splitlines()) == 5
    assert {json.loads(line)["id"] for line in done.stdout.splitlines()} == {str(src)}


def test_chunk_reads_plain_text_from_stdin():
    text = "Some text piped in. It has two sentences.\n"
    done = hf_endpoint("chunk", "-", stdin=text)
    assert done.returncode == 0, done.stderr
    (row,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert row["text"] == text and (row["start"], row["end"]) == (0, len(text))


def test_chunk_reads_jsonl_records_from_stdin_when_they_are_records():
    records = '{"id": "a", "text": "First."}\n\n{"id": "b", "text": "Second."}\n'
    done = hf_endpoint("chunk", "-", stdin=records)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["text"] for line in done.stdout.splitlines()] == ["First.", "Second."]


def test_chunk_format_option_overrides_what_stdin_looks_like():
    record = '{"id": "a", "text": "First."}\n'
    as_text = hf_endpoint("chunk", "--format", "text", "-", stdin=record)
    assert [json.loads(line)["text"] for line in as_text.stdout.splitlines()] == [record]
    as_jsonl = hf_endpoint("chunk", "--format", "jsonl", "-", stdin="not a record\n")
    assert (
        one_line_error(as_jsonl, 2) == "hf-endpoint: error: -:1: not valid JSON (Expecting value)"
    )


def test_chunk_bad_jsonl_line_is_named_and_earlier_records_are_kept(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "fine"}\n{"text": \n', "utf-8")
    done = hf_endpoint("chunk", src)
    assert one_line_error(done, 2).startswith(f"hf-endpoint: error: {src}:2: not valid JSON")
    assert len(done.stdout.splitlines()) == 1


def test_chunk_invalid_settings_are_one_line(tmp_path):
    done = hf_endpoint("chunk", "--strategy", "word", "--max-chunk-size", "5", tmp_path)
    assert "[max_chunk_size] must be greater than or equal to [10]" in one_line_error(done, 2)


def test_a_size_below_the_default_strategys_minimum_says_whose_minimum_it_is(tmp_path):
    message = one_line_error(hf_endpoint("chunk", "--max-chunk-size", "0", "-", stdin="x"), 2)
    assert "[max_chunk_size] must be greater than or equal to [20] (the minimum of the " in message
    assert "sentence strategy, the default when no strategy is given; the word" in message
    assert "take 10)" in message


def records_file(path, texts, ids=None):
    ids = ids or [f"doc-{i}" for i in range(len(texts))]
    path.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in zip(ids, texts)))
    return path


EMPTY_AT_101 = [f"Text number {i}." if i != 100 else "" for i in range(150)]


def test_chunk_names_an_empty_text_by_file_line_and_id_keeping_what_came_before(tmp_path):
    source = records_file(tmp_path / "in.jsonl", EMPTY_AT_101)
    done = hf_endpoint("chunk", source)
    assert one_line_error(done, 2) == (
        f'hf-endpoint: error: {source}:101: id "doc-100": the text is empty, which an endpoint '
        "refuses: give it some text, remove the record, or pass --skip-empty to leave such "
        "records out"
    )
    assert [json.loads(line)["id"] for line in done.stdout.splitlines()] == [
        f"doc-{i}" for i in range(100)
    ]


def test_embed_names_an_empty_text_the_same_way_and_writes_every_record_before_it(tmp_path, url):
    source, output = records_file(tmp_path / "in.jsonl", EMPTY_AT_101), tmp_path / "out.jsonl"
    message = one_line_error(embed(source, output, url), 2)
    assert message.startswith(f'hf-endpoint: error: {source}:101: id "doc-100": the text is empty')
    assert [r["id"] for r in rows_of(output)] == [f"doc-{i}" for i in range(100)]


def test_skip_empty_leaves_empty_texts_out_and_counts_them(tmp_path, url):
    source, output = records_file(tmp_path / "in.jsonl", EMPTY_AT_101), tmp_path / "out.jsonl"
    done = hf_endpoint("embed", source, "-o", output, "--url", url, "--skip-empty")
    assert done.returncode == 0, done.stderr
    assert [r["id"] for r in rows_of(output)] == [f"doc-{i}" for i in range(150) if i != 100]
    assert f"149 records (149 chunks) written to {output}" in done.stderr
    assert f"; 1 record with an empty text skipped ({source}:101)" in done.stderr
    chunked = hf_endpoint("chunk", "--skip-empty", source)
    assert chunked.returncode == 0 and len(chunked.stdout.splitlines()) == 149
    assert chunked.stderr == f"hf-endpoint: 1 record with an empty text skipped ({source}:101)\n"


def test_chunk_refuses_a_duplicate_id_as_embed_does(tmp_path):
    source = records_file(tmp_path / "in.jsonl", ["a.", "b.", "c."], ["x", "y", "x"])
    done = hf_endpoint("chunk", source)
    assert one_line_error(done, 2) == (
        f'hf-endpoint: error: {source}:3: duplicate id "x", first on line 1: ids must be unique'
    )
    assert [json.loads(line)["id"] for line in done.stdout.splitlines()] == ["x", "y"]


MARKDOWN_DOC = (
    "# Title\n\nIntro paragraph with some words in it. Another sentence here.\n\n"
    "## Section A\n\nText of section A goes on for a while with many words to fill the chunk.\n"
    "A second line.\n\n## Section B\n\nShort.\n"
)


def test_chunk_with_the_recursive_strategy(tmp_path):
    src = tmp_path / "doc.md"
    src.write_text(MARKDOWN_DOC, "utf-8")
    recursive = ["chunk", "--strategy", "recursive", "--max-chunk-size", "10"]
    done = hf_endpoint(*recursive, "--separator-group", "markdown", src)
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["start"], r["end"]) for r in rows] == [
        (0, 48), (48, 71), (71, 86), (86, 128), (111, 159), (159, 174), (174, 196)
    ]  # fmt: skip
    done = hf_endpoint(*recursive[:-1], "20", "--separator", "\\n\\n", "--separator", "\\n", src)
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["start"], r["end"]) for r in rows] == [(0, 84), (84, 173), (173, 196)]
    refused = hf_endpoint(*recursive, "--separators", "(?i)x", src)
    assert "Chunk separator regex [(?i)x] cannot be matched" in one_line_error(refused, 2)


def test_chunk_missing_file_is_one_line(tmp_path):
    assert "cannot read" in one_line_error(hf_endpoint("chunk", tmp_path / "absent.txt"), 2)


def test_chunk_into_a_closed_pipe_stops_quietly(tmp_path):
    src = tmp_path / "doc.txt"
    src.write_text("word " * 200_000, "utf-8")
    process = subprocess.Popen(
        [str(COMMAND), "chunk", *WORD_OPTIONS, str(src)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=no_endpoint_env(),
    )
    process.stdout.readline()
    process.stdout.close()
    assert process.wait(timeout=120) == 141
    assert process.stderr.read() == b""
    process.stderr.close()


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
    assert "English model" in output and "multilingual" in output
    assert re.fullmatch(
        r"\nDone in \d+\.\d s: \d+ documents chunked, embedded through LangChain and LlamaIndex, "
        r"searched, reranked\. Next: .*hf-endpoint embed --help.*notebooks/\.",
        lines[-1],
    )


def test_the_demo_module_imports_no_framework():
    code = (
        "import sys, hf_endpoint.demo, hf_endpoint.cli\n"
        "print(sorted(m for m in ('langchain_core', 'llama_index', 'matplotlib', "
        "'langchain_hf_endpoint', 'llama_index_hf_endpoint') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_make_demo_installs_the_demo_extra_only():
    root = Path(__file__).parent.parent
    makefile = (root / "Makefile").read_text("utf-8")
    demo = makefile[makefile.index("$(VENV)/.demo-installed:") :].split("\n\n")[0]
    assert '-e ".[demo]"' in demo and "[all]" not in demo
    assert re.search(r"^demo: \$\(VENV\)/\.demo-installed$", makefile, re.MULTILINE)
    assert re.search(r"^test: install\b", makefile, re.MULTILINE) and '-e ".[all]"' in makefile


# --- hf-endpoint embed: the run --------------------------------------------------------


def test_embed_writes_every_record_in_order_with_its_chunks_and_a_summary(tmp_path, url):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_records(source, 300)
    done = hf_endpoint(
        "embed", source, "-o", output, "--url", url, *WORD_OPTIONS, "--batch-records", "7"
    )
    assert done.returncode == 0, done.stderr
    rows = rows_of(output)
    assert [r["id"] for r in rows] == [f"rec-{i}" for i in range(300)]
    texts = [json.loads(line)["text"] for line in source.read_text("utf-8").splitlines()]
    for row, text in zip(rows, texts):
        assert [(c["start"], c["end"]) for c in row["chunks"]] == chunk_offsets(text, WORDS)
        assert "text" not in row["chunks"][0]
    summary, stats = done.stderr.strip().splitlines()[-2:]
    chunks = sum(len(r["chunks"]) for r in rows)
    assert summary.startswith(f"hf-endpoint: 300 records ({chunks} chunks) written to {output}")
    assert stats.startswith("hf-endpoint: client: ") and f"{chunks} inputs" in stats
    assert "0 retries" in stats and "rate-limit wait" in stats


def test_embed_with_text_writes_each_chunks_text(tmp_path, url):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_records(source, 5)
    assert embed(source, output, url, "--with-text").returncode == 0
    texts = [json.loads(line)["text"] for line in source.read_text("utf-8").splitlines()]
    for row, text in zip(rows_of(output), texts):
        assert [c["text"] for c in row["chunks"]] == [c.text for c in chunk_text(text, WORDS)]
    assert sidecar_of(output)["text"] is True


def embedding_until(source, output, url, batch_records, lines, **popen):
    """``hf-endpoint embed`` running in the background, once ``output`` holds ``lines`` lines."""
    command = [str(COMMAND), "embed", str(source), "-o", str(output), "--url", url,
               *WORD_OPTIONS, "--batch-records", str(batch_records), "--quiet"]  # fmt: skip
    process = subprocess.Popen(command, env=no_endpoint_env(), text=True, **popen)
    deadline = time.monotonic() + 120
    while (
        not output.exists() or output.read_bytes().count(b"\n") < lines
    ) and time.monotonic() < deadline:
        time.sleep(0.05)
    return process


def test_embed_interrupted_by_kill_and_resumed_gives_every_record_once(tmp_path):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_records(source, 5000)
    with LocalEndpoint("hash", faults=Faults(latency=0.01)) as ep:
        process = embedding_until(source, output, ep.url, 50, 1000)
        process.send_signal(signal.SIGKILL)
        process.wait()
        interrupted = output.read_bytes().count(b"\n")
        assert 1000 <= interrupted < 5000
        done = embed(source, output, ep.url, "--batch-records", "50", "--resume")
        assert done.returncode == 0, done.stderr
    rows = rows_of(output)
    assert [r["id"] for r in rows] == [f"rec-{i}" for i in range(5000)]
    texts = [json.loads(line)["text"] for line in source.read_text("utf-8").splitlines()]
    hash_backend = HashBackend()
    for row in rows[::97]:
        text = texts[int(row["id"].removeprefix("rec-"))]
        assert [(c["start"], c["end"]) for c in row["chunks"]] == chunk_offsets(text, WORDS)
        for c in row["chunks"]:
            np.testing.assert_allclose(
                c["embedding"], hash_backend.vector(text[c["start"] : c["end"]]), rtol=1e-6
            )


def test_ctrl_c_stops_with_one_line_and_keeps_whole_records(tmp_path):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_records(source, 3000)
    with LocalEndpoint("hash", faults=Faults(latency=0.05)) as ep:
        process = embedding_until(source, output, ep.url, 20, 100, stderr=subprocess.PIPE)
        process.send_signal(signal.SIGINT)
        stopped = time.monotonic()
        _, stderr = process.communicate(timeout=60)
        assert time.monotonic() - stopped < 10
        assert process.returncode == 130
        rows = rows_of(output)  # every line is a whole record
        assert stderr.strip() == (
            f"hf-endpoint: interrupted: {len(rows)} records written to {output} are kept; "
            "--resume continues from there"
        )
        assert [r["id"] for r in rows] == [f"rec-{i}" for i in range(len(rows))]
        assert embed(source, output, ep.url, "--resume").returncode == 0
    assert [r["id"] for r in rows_of(output)] == [f"rec-{i}" for i in range(3000)]


def test_an_unwritable_output_is_one_line(tmp_path, url):
    source = tmp_path / "in.jsonl"
    write_records(source, 3)
    output = tmp_path / "no such folder" / "out.jsonl"
    message = one_line_error(embed(source, output, url), 3)
    assert message.startswith("hf-endpoint: error: cannot write ")
    assert message.endswith("No such file or directory")


@contextlib.contextmanager
def small_filesystem(path, size):
    """A tmpfs of ``size`` bytes at ``path``: writing past it fails with ENOSPC, as on a full disk."""
    path.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)]
    if subprocess.run(mount, capture_output=True, check=False).returncode != 0:
        if os.environ.get("CI"):
            pytest.fail("CI runs as root, where a tmpfs can be mounted")
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=False)


def test_a_full_disk_stops_the_run_keeping_whole_records(tmp_path, url):
    source = tmp_path / "in.jsonl"
    write_records(source, 400)
    with small_filesystem(tmp_path / "disk", 64 * 1024) as disk:
        output = disk / "out.jsonl"
        done = embed(source, output, url, "--batch-records", "5")
        message = one_line_error(done, 3)
        rows = rows_of(output)
        assert 0 < len(rows) < 400
        assert message == (
            f"hf-endpoint: error: cannot write {output}: No space left on device; "
            f"{len(rows)} records written to {output} are kept"
        )
        assert [r["id"] for r in rows] == [f"rec-{i}" for i in range(len(rows))]
        grow = ["mount", "-o", "remount,size=16m", str(disk)]
        subprocess.run(grow, capture_output=True, check=True)
        assert embed(source, output, url, "--resume").returncode == 0
        assert [r["id"] for r in rows_of(output)] == [f"rec-{i}" for i in range(400)]


def test_embed_refuses_to_overwrite_without_resume(tmp_path, url):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_records(source, 3)
    output.write_text("", "utf-8")
    assert "give --resume" in one_line_error(embed(source, output, url), 2)


def test_embed_stops_at_a_bad_line_keeping_what_came_before(tmp_path, url):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_records(source, 120)
    with source.open("a") as f:
        f.write("{not json\n")
    message = one_line_error(embed(source, output, url), 2)
    assert message.startswith(f"hf-endpoint: error: {source}:121: not valid JSON")
    assert len(rows_of(output)) == 120


def test_embed_against_no_endpoint_is_one_line(tmp_path):
    source = tmp_path / "in.jsonl"
    write_records(source, 1)
    done = hf_endpoint("embed", source, "-o", tmp_path / "o.jsonl", "--quiet")
    assert one_line_error(done, 2) == (
        "hf-endpoint: error: no endpoint: give --url, set HF_ENDPOINT_URL, "
        "or give --inference-config FILE"
    )


def test_an_endpoint_that_fails_is_exit_status_1(tmp_path):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_records(source, 3)
    with LocalEndpoint("hash", api_key="hf_right") as ep:
        env = {**no_endpoint_env(), "HF_TOKEN": "hf_wrong"}
        message = one_line_error(embed(source, output, ep.url, env=env), 1)
    assert "401" in message and "hf_wrong" not in message


@pytest.fixture(scope="module")
def guarded():
    with LocalEndpoint("hash", api_key="hf_right_token_0123") as ep:
        yield ep


def test_a_wrong_hf_token_is_named_as_refused_and_what_to_do_is_said(tmp_path, guarded):
    source, output = tmp_path / "in.jsonl", tmp_path / "o"
    write_records(source, 3)
    env = {**no_endpoint_env(), "HF_TOKEN": "hf_wrong_token_4567"}
    message = one_line_error(embed(source, output, guarded.url, env=env), 1)
    assert message == (
        "hf-endpoint: error: HTTP 401: the endpoint refused the token from HF_TOKEN; check that "
        "the token is current and allowed to call this endpoint (an endpoint of an organisation "
        "needs a token of that organisation), or set HF_TOKEN, run `hf auth login`, or give api_key"
    )
    assert not output.exists()


def test_no_token_at_all_says_none_was_sent(tmp_path, guarded):
    source, output = tmp_path / "in.jsonl", tmp_path / "o"
    write_records(source, 3)
    env = {**no_endpoint_env(), "HF_TOKEN_PATH": str(tmp_path / "no-token")}
    message = one_line_error(embed(source, output, guarded.url, env=env), 1)
    assert message.startswith(
        "hf-endpoint: error: HTTP 401: the endpoint needs a token and no token was sent (none "
        f"given, HF_TOKEN and HUGGINGFACEHUB_API_TOKEN unset, no login token file at {tmp_path}"
    )


def test_a_refused_token_of_an_inference_config_names_the_file(tmp_path, guarded):
    source = tmp_path / "in.jsonl"
    write_records(source, 3)
    config = tmp_path / "endpoint.json"
    body = {
        "service": "hugging_face",
        "service_settings": {"api_key": "hf_bad_999", "url": guarded.url},
    }
    config.write_text(json.dumps(body))
    done = hf_endpoint("embed", source, "-o", tmp_path / "o", "--inference-config", config)
    message = one_line_error(done, 1)
    assert f"refused the token in {config} (service_settings.api_key)" in message
    assert "put another in service_settings.api_key" in message and "999" not in message


def test_demo_says_the_endpoint_refused_the_token(guarded):
    env = {**no_endpoint_env(), "HF_ENDPOINT_URL": guarded.url, "HF_TOKEN": "hf_wrong_token_4567"}
    done = hf_endpoint("demo", env=env)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith("hf-endpoint: error: HTTP 401: the endpoint refused the token from HF_TOKEN; ")
    )
    assert "4567" not in done.stderr + done.stdout


def test_a_failed_run_that_wrote_nothing_leaves_nothing_behind(tmp_path, url):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_records(source, 3)
    message = one_line_error(embed(source, output, url + "/no/such/path"), 1)
    assert "404" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]
    assert embed(source, output, url).returncode == 0  # no --resume needed
    assert len(rows_of(output)) == 3


def test_an_interrupted_run_that_wrote_nothing_leaves_nothing_behind(tmp_path):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_records(source, 3)
    with LocalEndpoint("hash", faults=Faults(latency=30)) as ep:
        command = [str(COMMAND), "embed", source, "-o", output, "--url", ep.url, "--quiet"]
        process = subprocess.Popen(
            command, env=no_endpoint_env(), stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 60
        while not output.exists() and time.monotonic() < deadline:  # the run has started
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert (
        stderr
        == f"hf-endpoint: interrupted: no record was written, so {output} is not left behind\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_a_second_ctrl_c_while_stopping_adds_no_noise(tmp_path):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_records(source, 3000)
    with LocalEndpoint("hash", faults=Faults(latency=0.5)) as ep:
        process = embedding_until(source, output, ep.url, 20, 40, stderr=subprocess.PIPE)
        process.send_signal(signal.SIGINT)
        time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    rows = rows_of(output)
    assert stderr == (
        f"hf-endpoint: interrupted: {len(rows)} records written to {output} are kept; "
        "--resume continues from there\n"
    )


def serving(*args, **popen):
    """``hf-endpoint serve`` in the background, once it says where it listens."""
    command = [str(COMMAND), "serve", "--backend", "hash", *map(str, args)]
    process = subprocess.Popen(
        command, env=no_endpoint_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    line = process.stdout.readline()
    assert line.startswith("hf-endpoint server listening on http://127.0.0.1:"), line
    return process, line.rsplit(":", 1)[1].strip()


def test_serve_stops_on_ctrl_c_with_one_line_and_status_130():
    process, _ = serving("--port", 0)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert stderr == "hf-endpoint: server stopped (interrupted)\n"


def test_serve_on_a_busy_port_is_one_line_and_status_2():
    process, port = serving("--port", 0)
    try:
        done = hf_endpoint("serve", "--backend", "hash", "--port", port, timeout=60)
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)
    assert one_line_error(done, 2) == (
        f"hf-endpoint: error: cannot listen on 127.0.0.1:{port}: Address already in use"
    )


def test_serve_loads_the_model_without_a_progress_bar():
    pytest.importorskip("sentence_transformers", reason="the minilm extra is not installed")
    command = [str(COMMAND), "serve", "--backend", "minilm", "--port", "0", "--threads", "1"]
    process = subprocess.Popen(
        command, env=no_endpoint_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().startswith("hf-endpoint server listening on ")
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert stderr == "hf-endpoint: server stopped (interrupted)\n"  # no "Loading weights"


def test_embed_names_a_record_whose_text_cannot_be_sent(tmp_path, url):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text('{"id": "ok", "text": "fine"}\n{"id": "bad", "text": "x\\ud800y"}\n', "utf-8")
    message = one_line_error(embed(source, output, url), 2)
    assert f'{source}:2: id "bad": the text holds a lone surrogate' in message
    assert [r["id"] for r in rows_of(output)] == ["ok"]


# --- hf-endpoint embed: options -----------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--batch-records", "0"),
        ("--batch-size", "0"),
        ("--max-concurrency", "-1"),
        ("--rate-limit", "fast"),
    ],
)
def test_embed_refuses_option_values_below_one(tmp_path, option, value):
    done = hf_endpoint("embed", "in.jsonl", "-o", tmp_path / "o.jsonl", option, value)
    assert done.returncode == 2
    assert f"argument {option}: must be a whole number >= 1, not '{value}'" in done.stderr
    assert not (tmp_path / "o.jsonl").exists()


def test_batch_size_sets_the_inputs_per_request(tmp_path):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text(
        "".join(json.dumps({"id": i, "text": "word " * 50}) + "\n" for i in range(10)), "utf-8"
    )
    with LocalEndpoint("hash") as ep:
        done = hf_endpoint(
            "embed", source, "-o", output, "--url", ep.url, "--strategy", "word",
            "--max-chunk-size", "10", "--overlap", "1", "--batch-size", "5",
            "--batch-records", "10", "--quiet",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        stats = ep.stats()
    assert stats["inputs"] == 60 and stats["requests"] == 12
    assert [r["id"] for r in rows_of(output)] == list(range(10))


def test_max_concurrency_bounds_the_requests_in_flight(tmp_path):
    source = tmp_path / "in.jsonl"
    write_records(source, 60)
    for limit in (1, 3):
        with LocalEndpoint("hash", faults=Faults(latency=0.05)) as ep:
            output = tmp_path / f"out-{limit}.jsonl"
            done = embed(source, output, ep.url, "--batch-size", "2", "--max-concurrency", limit)
            assert done.returncode == 0, done.stderr
            assert 1 <= ep.stats()["max_in_flight"] <= limit
            assert sidecar_of(output)["max_concurrency"] == limit


def test_rate_limit_spaces_the_requests(tmp_path):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_records(source, 12)
    with LocalEndpoint("hash") as ep:
        done = embed(source, output, ep.url, "--batch-size", "2", "--rate-limit", "300")
        assert done.returncode == 0, done.stderr
        stats = ep.stats()
    requests = stats["requests"]
    assert requests >= 10
    first, last = stats["arrivals"][-requests], stats["arrivals"][-1]
    assert last - first >= (requests - 1) * 0.2 * 0.95
    assert sidecar_of(output)["rate_limit"] == 300


def test_normalize_and_truncate_reach_the_endpoint(tmp_path):
    url = local_url("hash", **TEI_1_8)  # a server that cuts nothing it is not asked to
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": "long", "text": "word " * 600}) + "\n", "utf-8")
    whole = ["--strategy", "none"]
    refused = hf_endpoint("embed", source, "-o", tmp_path / "a.jsonl", "--url", url, *whole)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "must have less than 512 tokens" in refused.stderr.strip().splitlines()[-1]
    done = hf_endpoint(
        "embed", source, "-o", tmp_path / "b.jsonl", "--url", url, *whole, "--truncate",
        "--no-normalize", "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (row,) = rows_of(tmp_path / "b.jsonl")
    assert np.linalg.norm(row["chunks"][0]["embedding"]) > 2
    sidecar = sidecar_of(tmp_path / "b.jsonl")
    assert (sidecar["truncate"], sidecar["normalize"]) == (True, False)
    default = hf_endpoint("embed", source, "-o", tmp_path / "c.jsonl", "--url", url, "--quiet")
    assert default.returncode == 0, default.stderr
    for chunk in rows_of(tmp_path / "c.jsonl")[0]["chunks"]:
        assert abs(np.linalg.norm(chunk["embedding"]) - 1) < 1e-5


def inference_config(path, url, chunking):
    path.write_text(
        json.dumps({
            "service": "hugging_face",
            "service_settings": {"url": url, "api_key": "hf_cli_key"},
            "chunking_settings": chunking,
        }),
        "utf-8",
    )  # fmt: skip


def test_embed_from_an_inference_config_file(tmp_path):
    source, output, config = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "ep.json"
    write_records(source, 10)
    sentences = {"strategy": "sentence", "max_chunk_size": 20, "sentence_overlap": 0}
    with LocalEndpoint("hash", api_key="hf_cli_key") as ep:
        inference_config(config, ep.url, sentences)
        done = hf_endpoint("embed", source, "-o", output, "--inference-config", config, "--quiet")
        assert done.returncode == 0, done.stderr
    assert [len(r["chunks"]) for r in rows_of(output)[:4]] == [1, 1, 1, 1]
    assert sidecar_of(output)["chunking_settings"] == sentences


def test_chunking_options_replace_the_config_files_chunking_settings_as_a_whole(tmp_path):
    source, output, config = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "ep.json"
    write_records(source, 10)
    with LocalEndpoint("hash", api_key="hf_cli_key") as ep:
        inference_config(
            config, ep.url, {"strategy": "sentence", "max_chunk_size": 20, "sentence_overlap": 1}
        )
        done = hf_endpoint(
            "embed", source, "-o", output, "--inference-config", config, "--strategy", "word",
            "--max-chunk-size", "10", "--quiet",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    word = {"strategy": "word", "max_chunk_size": 10, "overlap": 5}
    assert sidecar_of(output)["chunking_settings"] == word
    texts = [json.loads(line)["text"] for line in source.read_text("utf-8").splitlines()]
    for row, text in zip(rows_of(output), texts):
        assert [(c["start"], c["end"]) for c in row["chunks"]] == chunk_offsets(text, word)


def test_embed_with_the_recursive_strategy(tmp_path, url):
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
    done = hf_endpoint("embed", source, "-o", output, "--url", url, "--quiet", *recursive)
    assert done.returncode == 0, done.stderr
    (row,) = rows_of(output)
    settings = {"strategy": "recursive", "max_chunk_size": 10, "separator_group": "markdown"}
    assert [(c["start"], c["end"]) for c in row["chunks"]] == chunk_offsets(MARKDOWN_DOC, settings)
    assert len(row["chunks"]) == 7
    assert sidecar_of(output)["chunking_settings"] == ChunkingSettings.from_dict(settings).to_dict()


# --- hf-endpoint embed: what produced the output, and --resume -------------------------


def test_the_sidecar_records_what_produced_the_output(tmp_path):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_records(source, 4)
    with LocalEndpoint("hash") as ep:
        port = ep.url.rsplit(":", 1)[1]
        with_credentials = f"http://someone:s3cret@127.0.0.1:{port}/"
        assert embed(source, output, with_credentials).returncode == 0
    sidecar = sidecar_of(output)
    assert "s3cret" not in json.dumps(sidecar)
    assert sidecar["url"] == f"http://127.0.0.1:{port}/"
    assert sidecar["model_id"] == "hf-endpoint/hash"
    assert sidecar["dimensions"] == 384
    assert sidecar["chunking_settings"] == WORDS
    assert sidecar["hf_endpoint"] == __version__
    assert sidecar["rate_limit"] == 3000  # the default that applied, not null
    assert sidecar["document_prefix"] is None and sidecar["query_prefix"] is None


def test_the_document_prefix_is_sent_recorded_and_compared_on_resume(tmp_path, url):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_records(source, 5)
    assert embed(source, output, url, "--document-prefix", "passage: ").returncode == 0
    texts = [json.loads(line)["text"] for line in source.read_text("utf-8").splitlines()]
    hash_backend = HashBackend()
    for row, text in zip(rows_of(output), texts):
        assert [(c["start"], c["end"]) for c in row["chunks"]] == chunk_offsets(text, WORDS)
        for c in row["chunks"]:
            sent = "passage: " + text[c["start"] : c["end"]]
            np.testing.assert_allclose(c["embedding"], hash_backend.vector(sent), rtol=1e-6)
    assert sidecar_of(output)["document_prefix"] == "passage: "
    message = one_line_error(embed(source, output, url, "--resume"), 2)
    assert 'document_prefix "passage: " there, null now' in message


def test_the_query_prefix_marks_the_records_as_queries(tmp_path, url):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    records_file(source, ["what is tea?"])
    assert embed(source, output, url, "--query-prefix", "query: ").returncode == 0
    (row,) = rows_of(output)
    np.testing.assert_allclose(
        row["chunks"][0]["embedding"], HashBackend().vector("query: what is tea?"), rtol=1e-6
    )
    both = embed(source, tmp_path / "x", url, "--query-prefix", "q", "--document-prefix", "p")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr


def test_resume_with_other_chunking_settings_is_refused_naming_them(tmp_path, url):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_records(source, 10)
    assert embed(source, output, url).returncode == 0
    before = output.read_bytes()
    write_records(source, 10, start=10)
    done = hf_endpoint("embed", source, "-o", output, "--url", url, "--resume", "--quiet")
    message = one_line_error(done, 2)
    assert message.startswith(f"hf-endpoint: error: {output} was written with other settings (")
    assert (
        'chunking_settings {"strategy": "word", "max_chunk_size": 10, "overlap": 3} there, '
        "null now" in message
    )
    assert output.read_bytes() == before


def test_resume_against_another_endpoint_is_refused_naming_the_url(tmp_path, url):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_records(source, 10)
    assert embed(source, output, url).returncode == 0
    with LocalEndpoint("hash") as other:
        message = one_line_error(embed(source, output, other.url, "--resume"), 2)
    assert f'url "{url}" there, "{other.url}" now' in message


def test_resume_of_a_file_without_its_sidecar_is_refused(tmp_path, url):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_records(source, 3)
    output.write_text('{"id": "rec-0", "chunks": []}\n', "utf-8")
    message = one_line_error(embed(source, output, url, "--resume"), 2)
    assert "has no out.jsonl.meta.json beside it" in message


@pytest.mark.parametrize(
    ("line", "problem"),
    [("{not json", "not valid JSON"), ('{"chunks": []}', 'no "id"')],
)
def test_resume_over_a_damaged_output_line_names_file_and_line(tmp_path, url, line, problem):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_records(source, 5)
    assert embed(source, output, url).returncode == 0
    lines = output.read_text("utf-8").splitlines()
    lines[2] = line
    output.write_text("\n".join(lines) + "\n", "utf-8")
    message = one_line_error(embed(source, output, url, "--resume"), 2)
    assert message.startswith(f"hf-endpoint: error: {output}:3: {problem}")


def test_duplicate_ids_are_an_error_naming_both_lines(tmp_path, url):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_records(source, 5)
    with source.open("a") as f:
        f.write(json.dumps({"id": "rec-1", "text": "A second record with the same id."}) + "\n")
    message = one_line_error(embed(source, output, url), 2)
    assert message == (
        f'hf-endpoint: error: {source}:6: duplicate id "rec-1", first on line 2: ids must be unique'
    )
    assert [r["id"] for r in rows_of(output)] == [f"rec-{i}" for i in range(5)]


def test_a_duplicate_id_is_found_on_resume_too(tmp_path, url):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_records(source, 300)
    assert embed(source, output, url).returncode == 0
    with source.open("a") as f:
        f.write(json.dumps({"id": "rec-7", "text": "Reuses an id already written."}) + "\n")
    message = one_line_error(embed(source, output, url, "--resume"), 2)
    assert message.endswith('301: duplicate id "rec-7", first on line 8: ids must be unique')
    assert len(rows_of(output)) == 300


def test_records_without_an_id_are_named_by_their_line(tmp_path, url):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text('{"text": "one"}\n{"text": "one"}\n{"id": 7, "text": "two"}\n', "utf-8")
    assert embed(source, output, url).returncode == 0
    assert [r["id"] for r in rows_of(output)] == [f"{source}:1", f"{source}:2", 7]


def test_the_summary_says_what_the_client_did_against_a_faulty_endpoint(tmp_path):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_records(source, 100)
    with LocalEndpoint("hash", faults=Faults(rate_429=0.3, retry_after=0.0, seed=4)) as ep:
        done = hf_endpoint("embed", source, "-o", output, "--url", ep.url, *WORD_OPTIONS)
        assert done.returncode == 0, done.stderr
        served = ep.stats()
    assert [r["id"] for r in rows_of(output)] == [f"rec-{i}" for i in range(100)]
    stats = done.stderr.strip().splitlines()[-1]
    refused = served["status"]["429"]
    assert refused > 0
    assert f"{served['requests'] + served['info_requests']} requests" in stats
    assert f"{refused} retries (HTTP 429: {refused})" in stats


def test_the_id_index_finds_every_repeat_while_it_grows():
    index = IdIndex()
    for line in range(1, 20_001):
        assert index.setdefault(f"doc-{line}", line) == line
    for line in range(1, 20_001, 7):
        assert index.setdefault(f"doc-{line}", 99_999) == line
    assert index.setdefault(5, 30_000) == 30_000  # an integer id is not its string
    assert index.setdefault("5", 30_001) == 30_001
    assert "doc-20000" in index and "doc-20001" not in index and len(index) == 20_002
