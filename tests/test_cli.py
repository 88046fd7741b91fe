"""The hf-endpoint command line: chunk and demo, errors as one line."""

import json
import subprocess
import sys

from hf_endpoint import chunk_offsets
from hf_endpoint.cli import main


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
    assert main(["chunk", "--strategy", "word", "--max-chunk-size", "500", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "[max_chunk_size] must be less than or equal to [300]" in err


def test_missing_file_is_one_line(capsys, tmp_path):
    assert main(["chunk", str(tmp_path / "absent.txt")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_demo_runs_as_a_command():
    done = subprocess.run(
        [sys.executable, "-m", "hf_endpoint.cli", "demo"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "zh-tea:" in done.stdout and "en-tea:" in done.stdout
