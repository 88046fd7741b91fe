"""Every client option is declared once (``hf_endpoint.client._options``), and every place that
takes options is made from that declaration or held to it: the clients' keywords, the
adapters' fields, the command line's flags. Also the injectable ``http_client``."""

import argparse
import ast
import asyncio
import dataclasses
import inspect
import os
import pickle
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import httpx
import orjson
import pytest

import hf_endpoint.client
from hf_endpoint import ConfigError, EmbeddingClient, RerankClient, RetryPolicy
from hf_endpoint._adapter import EndpointAdapter, RerankAdapter
from hf_endpoint.cli import _parser
from hf_endpoint.client import _keywords
from hf_endpoint.client._keywords import Region, stale
from hf_endpoint.client._options import (
    EMBED,
    RERANK,
    ClientOptions,
    Flag,
    Integer,
    add_flags,
    declared,
    option,
)
from hf_endpoint.server import LocalEndpoint
from langchain_hf_endpoint import HFEndpointEmbeddings, HFEndpointRerank
from llama_index_hf_endpoint import HFEndpointEmbedding
from llama_index_hf_endpoint import HFEndpointRerank as LlamaRerank

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("hf_endpoint", "langchain_hf_endpoint", "llama_index_hf_endpoint")
# What every client takes beside its options: not values to validate, but objects.
NOT_OPTIONS = {"self", "url", "api_key", "limiter", "http_client"}
UNLIMITED = 10_000_000


@dataclasses.dataclass(frozen=True)
class WithThrowaway(ClientOptions):
    """The declaration with one more option, as adding one would be written."""

    shoe_size: int = option(
        7,
        "A throw-away option: the shoe size.",
        Integer(1),
        flag=Flag("the shoe size", "N"),
    )


def keyword_drift(init, client, options):
    """How the keywords of ``init`` differ from the ``options`` ``client`` takes."""
    parameters = inspect.signature(init).parameters
    hints = typing.get_type_hints(init)
    found = []
    options = [s for s in options if s.name != "url"]  # positional, required
    names = {s.name for s in options}
    for name in sorted(set(parameters) - NOT_OPTIONS - names):
        found.append(f"{name}: a keyword, not a declared option")
    for spec in options:
        parameter = parameters.get(spec.name)
        if parameter is None:
            found.append(f"{spec.name}: declared, not a keyword")
            continue
        if parameter.kind is not inspect.Parameter.KEYWORD_ONLY:
            found.append(f"{spec.name}: not keyword-only")
        if parameter.default != spec.default_for(client):
            found.append(f"{spec.name}: default {parameter.default!r}, declared {spec.default!r}")
        if hints[spec.name] != spec.accepts():
            found.append(f"{spec.name}: type {hints[spec.name]}, declared {spec.accepts()}")
    return found


# -- the declaration reaches every place -------------------------------------------------


@pytest.mark.parametrize(("client", "kind"), [(EmbeddingClient, EMBED), (RerankClient, RERANK)])
def test_client_keywords_are_the_declared_options_with_their_types_and_defaults(client, kind):
    assert keyword_drift(client.__init__, kind, declared(kind)) == []


def test_a_new_option_missing_from_a_client_keywords_is_caught():
    options = declared(EMBED, of=WithThrowaway)
    assert keyword_drift(EmbeddingClient.__init__, EMBED, options) == [
        "shoe_size: declared, not a keyword"
    ]


def test_the_rerank_batch_size_default_is_its_own():
    spec = next(s for s in declared(RERANK) if s.name == "batch_size")
    assert inspect.signature(RerankClient).parameters["batch_size"].default == 32
    assert spec.default_for(RERANK) == 32 and spec.default_for(EMBED) == spec.default == 20


def test_a_new_option_is_validated_with_its_declared_check():
    assert WithThrowaway("http://127.0.0.1:1").shoe_size == 7
    with pytest.raises(ConfigError) as caught:
        WithThrowaway("http://127.0.0.1:1", batch_size=0, shoe_size=0)
    assert caught.value.errors == [
        "[batch_size] must be an integer >= 1, not 0",
        "[shoe_size] must be an integer >= 1, not 0",
    ]


def test_a_new_option_makes_the_written_keywords_and_fields_stale():
    written = Region("_adapter.py", "adapter fields both").lines(declared(of=WithThrowaway))
    assert 'shoe_size: int = declared_field("shoe_size")' in written
    assert stale(options=declared(of=WithThrowaway)) == [
        "client/_embedding.py: embed keywords",
        "client/rerank.py: rerank keywords",
        "_adapter.py: adapter fields both",
    ]


def test_the_written_keywords_and_fields_say_what_the_declaration_says():
    assert stale() == []
    assert _keywords.main(["--check"]) == 0


def test_a_hand_edit_of_a_written_region_is_caught(tmp_path, capsys):
    shutil.copytree(ROOT / "hf_endpoint", tmp_path / "hf_endpoint")
    rerank = tmp_path / "hf_endpoint" / "client" / "rerank.py"
    text = rerank.read_text()
    assert text.count("top_n: int | None = ClientOptions.top_n,") == 1
    rerank.write_text(text.replace("top_n: int | None = ClientOptions.top_n,", "top_n: int = 3,"))
    assert stale(root=tmp_path / "hf_endpoint") == ["client/rerank.py: rerank keywords"]


# The option a developer adds, as written in the declaration (before __post_init__).
SHOE_SIZE = """
    shoe_size: int = option(
        7,
        "A throw-away option: the shoe size.",
        Integer(1),
        flag=Flag("the shoe size", "N"),
    )
"""

# Run in the copy with the option added: where a user and a type checker meet it.
SEEN = """
import inspect, subprocess, sys
from hf_endpoint import ConfigError, EmbeddingClient, RerankClient
from langchain_hf_endpoint import HFEndpointEmbeddings, HFEndpointRerank
from llama_index_hf_endpoint import HFEndpointEmbedding

for client in (EmbeddingClient, RerankClient):
    p = inspect.signature(client).parameters["shoe_size"]
    assert (p.kind, p.default, p.annotation) == (p.KEYWORD_ONLY, 7, "int"), (client, p)
assert EmbeddingClient("http://127.0.0.1:1", api_key=None, shoe_size=9).options.shoe_size == 9
try:
    EmbeddingClient("http://127.0.0.1:1", api_key=None, shoe_size=0)
except ConfigError as exc:
    assert exc.errors == ["[shoe_size] must be an integer >= 1, not 0"], exc.errors
else:
    raise AssertionError("shoe_size=0 was taken")
for adapter in (HFEndpointEmbeddings, HFEndpointEmbedding, HFEndpointRerank):
    field = adapter.model_fields["shoe_size"]
    assert (field.annotation, field.default) == (int, 7), adapter
    assert field.description == "A throw-away option: the shoe size.", adapter
    model = adapter(url="http://127.0.0.1:1", api_key=None, shoe_size=11)
    assert (model.clients[0] if hasattr(model, "clients") else model.client).options.shoe_size == 11
helped = subprocess.run(
    [sys.executable, "-m", "hf_endpoint.cli", "embed", "--help"],
    capture_output=True, text=True, check=True,
).stdout
assert "--shoe-size N" in helped and "the shoe size" in helped, helped
print("seen everywhere")
"""

# What a type checker must take, and refuse, once the option is added.
TYPED = """
from hf_endpoint import EmbeddingClient, RerankClient
from hf_endpoint._adapter import EndpointAdapter, RerankAdapter  # the adapters' fields

EmbeddingClient("http://127.0.0.1:1", api_key=None, shoe_size=9)
RerankClient("http://127.0.0.1:1", api_key=None, shoe_size=9)
EndpointAdapter(url="http://127.0.0.1:1", shoe_size=9), RerankAdapter(shoe_size=9)
EmbeddingClient("http://127.0.0.1:1", api_key=None, shoe_size="nine")
"""


def test_adding_an_option_is_one_declaration_then_make_options(tmp_path):
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package)
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    options = tmp_path / "hf_endpoint" / "client" / "_options.py"
    text = options.read_text()
    at = text.index("\n    def __post_init__(self)")
    options.write_text(text[:at] + SHOE_SIZE + text[at:])
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}

    def run(*args, check=True):
        command = [sys.executable, *args]
        done = subprocess.run(command, check=False, cwd=tmp_path, env=env, capture_output=True)
        done.stdout, done.stderr = done.stdout.decode(), done.stderr.decode()
        assert not check or done.returncode == 0, done.stdout + done.stderr
        return done

    stale_before = run("-m", "hf_endpoint.client._keywords", "--check", check=False)
    assert stale_before.returncode == 1 and "embed keywords" in stale_before.stderr
    assert "_adapter.py" in run("-m", "hf_endpoint.client._keywords").stdout
    run("-m", "hf_endpoint.client._keywords", "--check")
    assert run("-c", SEEN).stdout.strip() == "seen everywhere"
    (tmp_path / "typed.py").write_text(TYPED)
    checked = run(
        "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / ".cache"), "typed.py", check=False
    )
    refused = (
        'typed.py:8: error: Argument "shoe_size" to "EmbeddingClient" has incompatible type '
        '"str"; expected "int"  [arg-type]'
    )
    assert checked.stdout.splitlines()[:-1] == [refused], checked.stdout


def test_a_new_option_with_a_flag_is_on_the_command_line():
    parser = argparse.ArgumentParser(prog="hf-endpoint embed")
    add_flags(parser, declared(EMBED, of=WithThrowaway))
    assert "--shoe-size N" in parser.format_help() and "the shoe size" in parser.format_help()
    assert parser.parse_args([]).shoe_size == 7
    assert parser.parse_args(["--shoe-size", "11"]).shoe_size == 11


def test_a_flag_refuses_what_the_declared_check_refuses(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["embed", "in.jsonl", "-o", "out.jsonl", "--max-concurrency", "0"])
    assert "argument --max-concurrency: must be a whole number >= 1, not '0'" in (
        capsys.readouterr().err
    )


def test_every_declared_flag_is_on_embed_help_with_its_default():
    embed = _parser()._subparsers._group_actions[0].choices["embed"]
    by_dest = {a.dest: a for a in embed._actions}
    for spec in declared(EMBED):
        if spec.flag is not None:
            assert by_dest[spec.name].default == spec.default
            assert by_dest[spec.name].help == spec.flag.help


@pytest.mark.parametrize(
    ("adapter", "kind"),
    [
        (EndpointAdapter, EMBED),
        (HFEndpointEmbeddings, EMBED),
        (HFEndpointEmbedding, EMBED),
        (RerankAdapter, RERANK),
        (HFEndpointRerank, RERANK),
        (LlamaRerank, RERANK),
    ],
)
def test_adapters_have_every_declared_option_as_a_field_as_declared(adapter, kind):
    written = typing.get_type_hints(adapter)  # what type checkers see
    for spec in declared(kind):
        if not spec.adapter:
            continue
        field = adapter.model_fields[spec.name]
        assert field.default == spec.default, spec.name
        assert field.description == spec.doc, spec.name
        assert written[spec.name] == (spec.adapter_takes or spec.accepts()), spec.name


# A value other than the default for every option: a new option needs one here.
SAMPLES = {
    "rate_limit": 120,
    "batch_size": 3,
    "max_concurrency": 2,
    "timeout": 7,
    "max_retries": 2,
    "truncate": True,
    "normalize": False,
    "prompt_name": "documents",
    "truncation_direction": "Left",
    "max_input_tokens": 50,
    "chunking_settings": {"strategy": "word", "max_chunk_size": 10, "overlap": 2},
    "scale_up_timeout": 30,
    "discover_limits": False,
    "max_body_bytes": 4096,
    "max_response_bytes": 8192,
    "dimensions": 8,
    "protocol": "tei",
    "model": "the-model",
    "encoding_format": "float",
    "query_prefix": "query: ",
    "document_prefix": "passage: ",
    "raw_scores": True,
    "top_n": 2,
    "return_documents": True,
}
URL = "http://127.0.0.1:1"


def _given(kind, adapter=False):
    return {
        s.name: SAMPLES[s.name]
        for s in declared(kind)
        if s.name not in ("url", "retry_policy")  # retry_policy excludes max_retries
        and (s.adapter or not adapter)
    }


def _as_stored(name, value):
    return getattr(ClientOptions(URL, **{name: value}), name)


def test_every_option_has_a_sample_other_than_its_default():
    for spec in declared():
        if spec.name not in ("url", "retry_policy"):
            assert _as_stored(spec.name, SAMPLES[spec.name]) != spec.default, spec.name


@pytest.mark.parametrize(("client", "kind"), [(EmbeddingClient, EMBED), (RerankClient, RERANK)])
def test_every_option_given_to_a_client_is_in_its_options(client, kind):
    given = _given(kind)
    options = client(URL, api_key=None, **given).options
    for name, value in given.items():
        assert getattr(options, name) == _as_stored(name, value), name


@pytest.mark.parametrize(
    ("adapter", "kind"),
    [
        (HFEndpointEmbeddings, EMBED),
        (HFEndpointEmbedding, EMBED),
        (HFEndpointRerank, RERANK),
        (LlamaRerank, RERANK),
    ],
)
def test_every_option_given_to_an_adapter_reaches_its_clients(adapter, kind):
    given = _given(kind, adapter=True)
    model = adapter(url=URL, api_key=None, **given)
    client = model.clients[0] if kind == EMBED else model.client  # embed: the documents'
    for name, value in given.items():
        assert getattr(client.options, name) == _as_stored(name, value), name
    policy = RetryPolicy(max_retries=1)
    with_policy = adapter(url=URL, api_key=None, retry_policy=policy)
    client = with_policy.clients[0] if kind == EMBED else with_policy.client
    assert client.retry_policy is policy


def _default_positions(tree):
    """(name, value node) of every default written in a module: parameters, class-body
    annotated assignments, and default= of calls that name their option."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            positional = args.posonlyargs + args.args
            yield from zip((a.arg for a in positional[-len(args.defaults) :]), args.defaults)
            for arg, default in zip(args.kwonlyargs, args.kw_defaults):
                if default is not None:
                    yield arg.arg, default
        elif isinstance(node, ast.ClassDef):
            for statement in node.body:
                if isinstance(statement, ast.AnnAssign) and statement.value is not None:
                    target = statement.target
                    value = statement.value
                    if isinstance(value, ast.Call):  # Field(default=...)
                        value = next((k.value for k in value.keywords if k.arg == "default"), None)
                    if isinstance(target, ast.Name) and value is not None:
                        yield target.id, value
        elif isinstance(node, ast.Call) and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and str(first.value).startswith("--"):
                for k in node.keywords:
                    if k.arg == "default":
                        yield first.value[2:].replace("-", "_"), k.value


def test_no_option_default_is_written_outside_the_declaration():
    # A parameter, field or flag named for an option, with the option's default written
    # out again (None, "not set", is every optional option's default and no number).
    defaults = {s.name: {s.default_for(EMBED), s.default_for(RERANK)} - {None} for s in declared()}
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name == "_options.py":
                continue
            for name, value in _default_positions(ast.parse(path.read_text())):
                if isinstance(value, ast.Constant) and value.value in defaults.get(name, ()):
                    found.append(f"{path.relative_to(ROOT)}:{value.lineno} {name}={value.value!r}")
    assert found == []


def test_the_default_scan_finds_a_default_written_twice():
    source = "def connect(url, *, timeout: float = 60.0, batch_size=4): ..."
    found = [(n, v.value) for n, v in _default_positions(ast.parse(source))]
    assert found == [("timeout", 60.0), ("batch_size", 4)]


def test_every_default_in_the_declaration_is_written_once():
    source = (ROOT / "hf_endpoint" / "client" / "_options.py").read_text()
    literals = [
        node.value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, (int, float))
        and not isinstance(node.value, bool)
    ]
    for spec in declared():
        if isinstance(spec.default, (int, float)) and not isinstance(spec.default, bool):
            assert literals.count(spec.default) == 1, spec.name


def test_client_module_exports_only_its_public_surface():
    internals = {"plan_call", "lone_surrogate", "RequestGate", "Limiter", "ClientOptions"}
    assert not internals & set(hf_endpoint.client.__all__)
    for name in hf_endpoint.client.__all__:
        assert not name.startswith("_") and hasattr(hf_endpoint.client, name)


# -- http_client: a transport or an httpx.Client of the caller's -------------------------


class RecordingTransport(httpx.BaseTransport):
    """A TEI that answers /embed and /rerank from the request alone, and keeps every request."""

    def __init__(self):
        self.requests = []
        self.closed = False

    def handle_request(self, request):
        self.requests.append(request)
        body = orjson.loads(request.read())
        if request.url.path.endswith("/rerank"):
            scores = [{"index": i, "score": 1.0 / (1 + i)} for i in range(len(body["texts"]))]
            return httpx.Response(200, content=orjson.dumps(scores))
        vectors = [[float(len(text)), 1.0] for text in body["inputs"]]
        return httpx.Response(200, content=orjson.dumps(vectors))

    def close(self):
        self.closed = True

    def sizes(self, key="inputs"):
        return [len(orjson.loads(r.content)[key]) for r in self.requests]


def _client(http_client, **options):
    return EmbeddingClient(
        "http://endpoint.test",
        api_key="hf_recorded",
        discover_limits=False,
        rate_limit=UNLIMITED,
        http_client=http_client,
        **options,
    )


def test_a_transport_sees_the_batches_the_plan_makes():
    transport = RecordingTransport()
    texts = [f"text {i}" * (i + 1) for i in range(7)]
    with _client(transport, batch_size=3, max_concurrency=1) as client:
        vectors = client.embed(texts)
    assert transport.sizes() == [3, 3, 1]
    assert [v[0] for v in vectors] == [float(len(t)) for t in texts]
    assert transport.requests[0].headers["authorization"] == "Bearer hf_recorded"


def test_a_transport_sees_the_batches_of_async_calls_too():
    transport = RecordingTransport()
    client = _client(transport, batch_size=2)
    vectors = asyncio.run(client.aembed(["a", "bb", "ccc", "dddd", "eeeee"]))
    assert sorted(transport.sizes()) == [1, 2, 2]
    assert [v[0] for v in vectors] == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_the_body_limit_splits_batches_before_sending():
    transport = RecordingTransport()
    texts = ["x" * 600] * 5  # 602 bytes as JSON each: two per 1,500-byte body at most
    with _client(transport, batch_size=20, max_body_bytes=1500, max_concurrency=1) as client:
        client.embed(texts)
    assert transport.sizes() == [2, 2, 1]


def test_a_rerank_transport_sees_documents_in_batches_of_32_by_default():
    transport = RecordingTransport()
    documents = [f"document {i}" for i in range(70)]
    with RerankClient(
        "http://endpoint.test/rerank",
        api_key=None,
        discover_limits=False,
        rate_limit=UNLIMITED,
        max_concurrency=1,
        http_client=transport,
    ) as client:
        result = client.rerank("query", documents, top_n=2)
    assert transport.sizes("texts") == [32, 32, 6]
    assert [r.index for r in result] == [0, 32]  # each batch's first scores 1.0


def test_a_transport_given_is_not_closed_by_the_client():
    transport = RecordingTransport()
    with _client(transport) as client:
        client.embed(["one"])
    assert not transport.closed
    with _client(transport) as client:  # and it serves the next client as well
        client.embed(["two"])
    assert len(transport.requests) == 2


def test_an_httpx_client_given_carries_the_clients_headers_and_is_left_open():
    transport = RecordingTransport()
    seen = []
    with httpx.Client(
        transport=transport,
        headers={"X-Team": "search"},
        event_hooks={"request": [seen.append]},
    ) as http:
        with _client(http, batch_size=2, max_concurrency=1) as client:
            client.embed(["a", "b", "c"])
        assert not http.is_closed
    assert len(seen) == 2
    for request in seen:
        assert request.headers["x-team"] == "search"  # the caller's client's own
        assert request.headers["authorization"] == "Bearer hf_recorded"
        assert request.extensions["timeout"]["read"] == 60.0  # the client's timeout


def test_an_async_httpx_client_is_refused_with_what_is_taken():
    with pytest.raises(ConfigError, match=r"\[http_client\] must be an httpx.Client or an"):
        _client(httpx.AsyncClient())
    with pytest.raises(ConfigError, match="not str"):
        _client("http://proxy.test")


def test_a_picklable_transport_travels_with_the_client():
    client = _client(httpx.MockTransport(_answer), batch_size=1)
    copy = pickle.loads(pickle.dumps(client))
    assert copy.embed(["abc", "de"]) == [[3.0, 1.0], [2.0, 1.0]]


def _answer(request):
    texts = orjson.loads(request.read())["inputs"]
    return httpx.Response(200, content=orjson.dumps([[float(len(t)), 1.0] for t in texts]))


def test_a_client_given_an_httpx_client_refuses_to_pickle_and_says_why():
    with httpx.Client() as http:
        with pytest.raises(TypeError, match="httpx.Client as http_client does not pickle"):
            pickle.dumps(_client(http))
        adapter = HFEndpointEmbeddings(url="http://endpoint.test", api_key=None, http_client=http)
        with pytest.raises(TypeError, match="httpx.Client as http_client does not pickle"):
            pickle.dumps(adapter)


@pytest.mark.parametrize("adapter", [HFEndpointEmbeddings, HFEndpointEmbedding])
def test_embedding_adapters_send_through_the_http_client_given(adapter):
    transport = RecordingTransport()
    model = adapter(
        url="http://endpoint.test",
        api_key=None,
        discover_limits=False,
        rate_limit=UNLIMITED,
        http_client=transport,
    )
    texts = ["first", "second", "third"]
    if adapter is HFEndpointEmbeddings:
        vectors = model.embed_documents(texts)
    else:
        vectors = model.get_text_embedding_batch(texts)
    assert [v[0] for v in vectors] == [5.0, 6.0, 5.0]
    assert transport.sizes() == [3]
    assert "http_client" not in model.model_dump()
    model.close()
    assert not transport.closed


@pytest.mark.parametrize("adapter", [HFEndpointRerank, LlamaRerank])
def test_rerank_adapters_send_through_the_http_client_given(adapter):
    transport = RecordingTransport()
    model = adapter(
        url="http://endpoint.test/rerank",
        api_key=None,
        discover_limits=False,
        rate_limit=UNLIMITED,
        batch_size=2,
        max_concurrency=1,
        http_client=transport,
    )
    assert model.client.rerank("q", ["a", "b", "c"]).scores == [1.0, 0.5, 1.0]
    assert transport.sizes("texts") == [2, 1]


def test_an_httpx_client_given_reaches_a_real_endpoint_with_the_clients_headers():
    sent = []
    with LocalEndpoint("hash", api_key="hf_loopback_key") as endpoint:
        with httpx.Client(event_hooks={"request": [sent.append]}) as http:
            with EmbeddingClient(endpoint.url, "hf_loopback_key", http_client=http) as client:
                vectors = client.embed(["over the wire"])
    assert len(vectors[0]) == 384
    embed = [r for r in sent if r.method == "POST"]
    assert len(embed) == 1
    assert embed[0].headers["authorization"] == "Bearer hf_loopback_key"
    assert embed[0].headers["content-type"] == "application/json"


# -- the return type of embed follows dtype ---------------------------------------------------


def test_embed_overloads_say_lists_by_default_and_an_array_for_a_dtype():
    for method in (EmbeddingClient.embed, EmbeddingClient.aembed):
        overloads = typing.get_overloads(method)
        returns = [
            typing.get_type_hints(o, vars(sys.modules[EmbeddingClient.__module__]) | _numpy())[
                "return"
            ]
            for o in overloads
        ]
        assert returns[0] is hf_endpoint.client.EmbeddingResult
        assert typing.get_origin(returns[1]).__name__ == "ndarray"
        assert issubclass(hf_endpoint.client.EmbeddingResult, list)


def _numpy():
    import numpy.typing

    return {"npt": numpy.typing}


@pytest.mark.parametrize("given", [{"protocol": "openai"}, {"model": "the-model"}])
def test_an_inference_api_client_refuses_the_endpoints_protocol_and_model(given):
    from hf_endpoint.remote import InferenceAPIEmbeddingClient

    with pytest.raises(ConfigError) as caught:
        InferenceAPIEmbeddingClient("http://127.0.0.1:1/_inference/text_embedding/e5", **given)
    message = f"{list(given)} belong to the endpoint's configuration"
    assert caught.value.errors == [f"{message}: an _inference request cannot carry them"]
