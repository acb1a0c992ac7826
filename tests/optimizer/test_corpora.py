"""RegisterCorpus / ListCorpora through a real optimizer: inline and from files under the
datasets directory, content-addressed storage, what a repeat appends (nothing), retries by
request_id, bad files refused with the field named and nothing appended, and the CLI."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from dspyops.artifacts import canonical_json
from dspyops.artifacts.files import FileArtifactStore
from dspyops.cli.main import main
from dspyops.client import OptimizerClient
from dspyops.corpora import decode_documents
from dspyops.proto import events_pb2 as pb
from optimizer_svc.server import OptimizerConfig, start
from tests.support.harness import ServerThread

HELP_CENTRE = Path(__file__).resolve().parents[2] / "dspyops" / "data" / "corpora" / "help_centre.jsonl"
DOCS = [
    {"id": "refunds", "text": "Refunds reach your card in 5 to 10 business days."},
    {"id": "shipping", "text": "Standard delivery takes 3 to 5 business days."},
]


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus-datasets")
    shutil.copy(HELP_CENTRE, root / "help.jsonl")
    with (root / "faq.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, ["question", "answer"])
        writer.writeheader()
        writer.writerow({"question": "refund", "answer": "Refunds take a week."})
        writer.writerow({"question": "shipping", "answer": "Parcels take three days."})
    (root / "no_text.jsonl").write_text('{"id": "a", "body": "x"}\n')
    (root / "dup_ids.jsonl").write_text('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n')
    (root / "text_not_string.jsonl").write_text('{"id": "a", "text": 5}\n')
    (root / "empty.jsonl").write_text("")
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, datasets: Path) -> Iterator[ServerThread]:
    tmp = tmp_path_factory.mktemp("corpora")
    config = OptimizerConfig(log=str(tmp / "log.db"), data_dir=tmp / "data", datasets_dir=datasets)
    thread = ServerThread(lambda: start(config))
    yield thread
    thread.stop()


@pytest.fixture()
def opt(server: ServerThread) -> Iterator[OptimizerClient]:
    with OptimizerClient(server.address) as client:
        yield client


def head(opt: OptimizerClient) -> int:
    return opt.read_log(0, 1).head


def registered_events(opt: OptimizerClient, corpus: str) -> list[pb.Event]:
    return list(opt.read_log(0, 1000, f"corpus-{corpus}", types=["CorpusRegistered"]).events)


def test_register_inline_is_content_addressed_in_the_log_and_the_artifact_store(
    opt: OptimizerClient, server: ServerThread
) -> None:
    corpus = opt.register_corpus("inline", DOCS)
    expected = hashlib.sha256(canonical_json([{"id": d["id"], "text": d["text"]} for d in DOCS])).hexdigest()
    assert (corpus.corpus, corpus.digest, corpus.count) == ("inline", expected, 2)
    [event] = registered_events(opt, "inline")
    assert event.position == corpus.registered_position
    registered = event.payload.corpus_registered
    assert registered.digest == expected and registered.count == 2
    assert [d.id for d in decode_documents(registered.documents, expected)] == ["refunds", "shipping"]
    stored = FileArtifactStore(server.running.jobs.artifacts.root).get(expected)
    assert stored == registered.documents
    assert corpus in opt.list_corpora().corpora


def test_register_from_the_shipped_jsonl_and_a_csv(opt: OptimizerClient) -> None:
    rows = [json.loads(line) for line in HELP_CENTRE.read_text().splitlines()]
    help_centre = opt.register_corpus("help-centre", source="help.jsonl", id_field="id")
    assert help_centre.count == len(rows) >= 30
    [event] = registered_events(opt, "help-centre")
    documents = decode_documents(event.payload.corpus_registered.documents, help_centre.digest)
    assert [(d.id, d.text) for d in documents] == [(r["id"], r["text"]) for r in rows]

    faq = opt.register_corpus("faq", source="faq.csv", text_field="answer")
    [event] = registered_events(opt, "faq")
    documents = decode_documents(event.payload.corpus_registered.documents, faq.digest)
    assert [(d.id, d.text) for d in documents] == [
        ("1", "Refunds take a week."),
        ("2", "Parcels take three days."),
    ]
    listed = {c.corpus: c for c in opt.list_corpora().corpora}
    assert listed["help-centre"] == help_centre and listed["faq"] == faq


def test_the_same_documents_again_append_nothing_and_others_move_the_name(opt: OptimizerClient) -> None:
    first = opt.register_corpus("moving", DOCS)
    before = head(opt)
    assert opt.register_corpus("moving", DOCS) == first  # another request id, same documents
    assert head(opt) == before
    moved = opt.register_corpus("moving", [*DOCS, {"id": "billing", "text": "Invoices are under Billing."}])
    assert moved.digest != first.digest and moved.count == 3 and moved.registered_position > before
    assert {c.corpus: c.digest for c in opt.list_corpora().corpora}["moving"] == moved.digest
    assert len(registered_events(opt, "moving")) == 2


def test_a_retried_request_is_answered_from_the_log(opt: OptimizerClient) -> None:
    first = opt.register_corpus("retried", DOCS, request_id="corpus-retry-1")
    opt.register_corpus("retried", DOCS[:1])  # the name moves on meanwhile
    before = head(opt)
    assert opt.register_corpus("retried", DOCS, request_id="corpus-retry-1") == first
    assert head(opt) == before
    with pytest.raises(grpc.RpcError) as err:
        opt.register_corpus("retried", DOCS[:1], request_id="corpus-retry-1")
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS and "request_id" in str(err.value.details())
    assert head(opt) == before


@pytest.mark.parametrize(
    "kwargs,field,says",
    [
        (dict(source="../help.jsonl"), "source.path", "'..'"),
        (dict(source="/etc/passwd.jsonl"), "source.path", "relative"),
        (dict(source="missing.jsonl"), "source.path", "no such file"),
        (dict(source="help.txt"), "source.path", ".jsonl or .csv"),
        (dict(source="no_text.jsonl"), "source.path", "no column 'text'"),
        (dict(source="no_text.jsonl", text_field="content"), "text_field", "no column 'content'"),
        (dict(source="help.jsonl", id_field="slug"), "id_field", "no column 'slug'"),
        (dict(source="dup_ids.jsonl", id_field="id"), "source.path", "repeats line 1"),
        (dict(source="text_not_string.jsonl"), "source.path", "must be a string"),
        (dict(source="empty.jsonl"), "source.path", "no documents"),
    ],
    ids=lambda v: str(v)[:40],
)
def test_a_bad_file_is_refused_naming_the_field_and_nothing_is_appended(
    opt: OptimizerClient, kwargs: dict[str, str], field: str, says: str
) -> None:
    before = head(opt)
    with pytest.raises(grpc.RpcError) as err:
        opt.register_corpus("bad-file", **kwargs)  # type: ignore[arg-type]
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    details = str(err.value.details())
    assert details.startswith(f"{field}:") and says in details, details
    assert head(opt) == before
    assert "bad-file" not in {c.corpus for c in opt.list_corpora().corpora}


def test_a_corpus_over_the_size_limit_is_refused(opt: OptimizerClient) -> None:
    before = head(opt)
    many = [{"id": str(i), "text": "x"} for i in range(10_001)]
    with pytest.raises(grpc.RpcError) as err:
        opt.register_corpus("too-many", many)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "documents" in str(err.value.details())
    big = [{"id": str(i), "text": "y" * 19_000} for i in range(500)]  # 9.5 MB of JSON > 8 MiB
    with pytest.raises(grpc.RpcError) as err:
        opt.register_corpus("too-big", big)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert str(err.value.details()).startswith("documents:") and "8,388,608 bytes" in str(err.value.details())
    assert head(opt) == before


def test_the_cli_registers_and_lists(
    server: ServerThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local = tmp_path / "local.jsonl"
    local.write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    address = ["--optimizer", server.address]
    assert main([*address, "corpora", "register", "cli-inline", "--documents", str(local), "--json"]) == 0
    registered = json.loads(capsys.readouterr().out)
    assert registered["corpus"] == "cli-inline" and registered["count"] == 2
    assert (
        main([*address, "corpora", "register", "cli-file", "--source", "help.jsonl", "--id-field", "id"]) == 0
    )
    assert "cli-file: 32 documents" in capsys.readouterr().out
    assert main([*address, "corpora", "list"]) == 0
    out = capsys.readouterr().out
    assert "cli-inline" in out and "cli-file" in out
