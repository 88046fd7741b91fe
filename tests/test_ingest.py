"""hf_endpoint.ingest without a server: what both engines share, record by record."""

import json

import pytest

from hf_endpoint.client import EmbeddedChunk
from hf_endpoint.ingest import IdIndex, IngestError, Record
from hf_endpoint.ingest.records import checked, jsonl_records, to_embed
from hf_endpoint.ingest.work import jsonl_lines


def numbered(lines):
    return list(enumerate(lines, 1))


def test_a_record_without_an_id_is_named_by_its_file_and_line():
    lines = ['{"text": "a"}', "", '{"id": 7, "text": "b"}', '{"text": "c"}']
    ids = [r.id for r in jsonl_records("in.jsonl", numbered(lines))]
    assert ids == ["in.jsonl:1", 7, "in.jsonl:4"]


def test_a_repeated_id_is_refused_naming_both_lines_after_the_records_before_it():
    lines = ['{"id": "a", "text": "x"}', '{"id": 1, "text": "y"}', '{"id": "a", "text": "z"}']
    read = []
    with pytest.raises(IngestError, match='^in.jsonl:3: duplicate id "a", first on line 1: '):
        read.extend(checked("in.jsonl", jsonl_records("in.jsonl", numbered(lines)), None))
    assert [r.id for r in read] == ["a", 1]


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ('{"id": 123456789012345678901234567890, "text": "x"}', "is not an integer of 64 bits"),
        ('{"id": "x\\udcff", "text": "x"}', "holds a lone surrogate"),
    ],
)
def test_an_id_the_output_cannot_carry_is_refused_naming_its_line(line, says):
    lines = ['{"id": 18446744073709551615, "text": "the largest id of 64 bits"}', line]
    read = []
    with pytest.raises(IngestError, match=f'^in.jsonl:2: "id" .*{says}'):
        read.extend(jsonl_records("in.jsonl", numbered(lines)))
    assert [r.id for r in read] == [2**64 - 1]


def test_the_string_and_the_integer_of_one_number_are_two_ids():
    lines = ['{"id": "1", "text": "x"}', '{"id": 1, "text": "y"}']
    assert len(list(checked("in.jsonl", jsonl_records("in.jsonl", numbered(lines)), None))) == 2


def test_records_already_written_are_skipped_and_a_lone_surrogate_is_refused():
    done = IdIndex()
    done.setdefault("a", 1)
    records = [Record(1, "a", "written"), Record(2, "b", "new"), Record(3, "c", "bad \udcff")]
    kept = []
    with pytest.raises(IngestError, match='^in.jsonl:3: id "c": the text holds a lone surrogate'):
        kept.extend(to_embed("in.jsonl", records, done))
    assert [r.id for r in kept] == ["b"]


def test_lines_rendered_one_record_at_a_time_are_the_lines_of_the_batch():
    """Ray's workers render each record's line; the local engine renders a batch at once."""
    records = [Record(1, "a", "one two"), Record(2, 5, "three")]
    results = [
        [EmbeddedChunk("one", 0, 3, [0.5, 0.25]), EmbeddedChunk(" two", 3, 7, [1.0, 0.0])],
        [EmbeddedChunk("three", 0, 5, [0.1, 0.2])],
    ]
    for with_text in (False, True):
        whole = jsonl_lines(records, results, with_text)
        assert whole == b"".join(jsonl_lines([r], [c], with_text) for r, c in zip(records, results))
        rows = [json.loads(line) for line in whole.splitlines()]
        assert [row["id"] for row in rows] == ["a", 5]
        assert ("text" in rows[0]["chunks"][0]) is with_text
