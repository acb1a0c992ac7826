"""Evaluate and CompareVersions through a real server on loopback, on the offline engine."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import dspy
import grpc
import pytest

from dspyops.client import OptimizerClient
from dspyops.eventlog import open_store
from dspyops.fold import fold
from dspyops.proto import events_pb2 as pb
from optimizer_svc.evaluation.compare import paired_test, verdict
from optimizer_svc.evaluation.report import class_metrics, percentile
from optimizer_svc.server import OptimizerConfig, start
from tests.support import metric_plugins
from tests.support.harness import ServerThread, ticket_rows

ROWS = ticket_rows()
TRAIN, VAL = ROWS[:40], ROWS[40:70]
SIG = "text -> label"

# Hand-checked: the offline engine answers with the label of the nearest demo.
TINY_DEMOS = [
    {"text": "refund my card charge twice", "label": "billing"},
    {"text": "package never arrived late delivery", "label": "shipping"},
]
TINY = [
    {"text": "card charged twice refund please", "label": "billing"},  # -> billing  (right)
    {"text": "where is my package delivery", "label": "shipping"},  # -> shipping (right)
    {"text": "password reset login broken", "label": "account"},  # -> billing  (wrong)
    {"text": "package arrived late", "label": "billing"},  # -> shipping (wrong)
]


def saved_state(demos: list[dict[str, str]], module: str = "Predict") -> bytes:
    """What plain DSPy writes with program.save('x.json')."""
    program = dspy.ChainOfThought(SIG) if module == "ChainOfThought" else dspy.Predict(SIG)
    predictor = program.predict if module == "ChainOfThought" else program
    predictor.demos = [dspy.Example(**d) for d in demos]
    path = Path(__file__).parent / f".saved-{id(demos)}.json"
    try:
        program.save(str(path))
        return path.read_bytes()
    finally:
        path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OptimizerClient, Path]]:
    tmp = tmp_path_factory.mktemp("evaluation")
    log = tmp / "log.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DSPYOPS_METRIC_MODULES", "tests.support.metric_plugins")
        datasets = tmp / "datasets"
        datasets.mkdir()
        (datasets / "tiny.jsonl").write_text("".join(json.dumps(r) + "\n" for r in TINY))
        config = OptimizerConfig(log=str(log), data_dir=tmp / "data", datasets_dir=datasets)
        thread = ServerThread(lambda: start(config))
        with OptimizerClient(thread.address) as client:
            assert client.import_program("tickets", SIG, saved_state([])).version == "1.0.0"  # weak
            assert client.import_program("tickets", SIG, saved_state(TRAIN)).version == "1.1.0"  # strong
            assert client.import_program("tiny", SIG, saved_state(TINY_DEMOS)).version == "1.0.0"
            yield client, log
        thread.stop()


@pytest.fixture()
def opt(served: tuple[OptimizerClient, Path]) -> OptimizerClient:
    return served[0]


def report_of(events: list) -> pb.EvaluationReport:
    assert events[-1].WhichOneof("kind") == "report"
    return events[-1].report


def test_hand_checked_per_class_metrics(opt: OptimizerClient) -> None:
    events = list(opt.evaluate("tiny", "1.0.0", dataset=TINY, include_results=True))
    kinds = [e.WhichOneof("kind") for e in events]
    assert kinds == ["progress"] * 4 + ["report"]
    assert [e.progress.done for e in events[:-1]] == [1, 2, 3, 4]
    assert events[-2].progress.running_score == pytest.approx(0.5)
    report = report_of(events)
    assert (report.program, report.version, report.metric) == ("tiny", "1.0.0", "exact_match")
    assert report.examples == 4 and report.errors == 0
    assert report.score == pytest.approx(0.5) and report.accuracy == pytest.approx(0.5)
    per = {c.label: c for c in report.per_class}
    assert set(per) == {"account", "billing", "shipping"}
    assert (per["account"].precision, per["account"].recall, per["account"].support) == (0, 0, 1)
    assert per["billing"].precision == pytest.approx(0.5) and per["billing"].recall == pytest.approx(0.5)
    assert per["billing"].f1 == pytest.approx(0.5) and per["billing"].support == 2
    assert per["shipping"].precision == pytest.approx(0.5) and per["shipping"].recall == pytest.approx(1.0)
    assert per["shipping"].f1 == pytest.approx(2 / 3)
    assert report.macro_precision == pytest.approx(1 / 3)
    assert report.macro_recall == pytest.approx(0.5)
    assert report.macro_f1 == pytest.approx((0 + 0.5 + 2 / 3) / 3)
    assert [r.predicted["label"] for r in report.results] == ["billing", "shipping", "billing", "shipping"]
    assert [r.score for r in report.results] == [1, 1, 0, 0]
    assert report.results[2].inputs == {"text": TINY[2]["text"]}
    assert report.results[2].expected == {"label": "account"}
    assert report.usage.lm_calls >= 4 and report.usage.input_tokens > 0
    assert report.latency_p95_ms >= report.latency_p50_ms > 0
    assert len(report.dataset_digest) == 64


def test_report_is_logged_without_results_and_folded_into_the_version(
    served: tuple[OptimizerClient, Path],
) -> None:
    opt, log = served
    before = opt.read_log(stream_prefix="program-tiny").events
    report = report_of(list(opt.evaluate("tiny", "1.0.0", dataset=TINY, include_results=True)))
    assert len(report.results) == 4
    after = opt.read_log(stream_prefix="program-tiny").events
    assert len(after) == len(before) + 1
    event = after[-1]
    assert event.type == "dspyops.v1.EvaluationRecorded"
    recorded = event.payload.evaluation_recorded
    assert (recorded.program, recorded.version) == ("tiny", "1.0.0")
    assert recorded.report.score == pytest.approx(0.5) and not recorded.report.results
    # the program stream's version moved in the fold: a registry command still succeeds
    assert opt.set_alias("tiny", "champion", "1.0.0").aliases["champion"] == "1.0.0"
    store = open_store(str(log))
    try:
        state = fold(store.read(0, 10_000))
    finally:
        store.close()
    summary = state.programs["tiny"].versions["1.0.0"].last_evaluation
    assert summary is not None and summary["position"] == event.position
    assert summary["score"] == pytest.approx(0.5) and summary["examples"] == 4


def test_progress_streams_while_the_evaluation_runs(opt: OptimizerClient) -> None:
    """The first progress event arrives while the other 11 examples cannot be scored yet
    (their metric waits for the gate the test opens only then): progress is live."""
    metric_plugins.close_gate()
    kinds = []
    try:
        for event in opt.evaluate(
            "tiny", "@champion", dataset=TINY * 3, metric="tests.support.metric_plugins:gated_exact"
        ):
            kinds.append(event.WhichOneof("kind"))
            if len(kinds) == 1:
                assert kinds == ["progress"] and not metric_plugins.GATE.is_set()
                metric_plugins.GATE.set()
    finally:
        metric_plugins.GATE.set()
    assert kinds == ["progress"] * 12 + ["report"]


def test_dataset_ref_gives_the_same_report_as_inline(opt: OptimizerClient) -> None:
    by_ref = report_of(list(opt.evaluate("tiny", "1.0.0", dataset_ref="tiny.jsonl")))
    inline = report_of(list(opt.evaluate("tiny", "1.0.0", dataset=TINY)))
    assert by_ref.dataset_digest == inline.dataset_digest and by_ref.score == inline.score == 0.5
    compared = opt.compare_versions("tiny", "1.0.0", "1.0.0", dataset_ref="tiny.jsonl")
    assert compared.examples == 4 and compared.p_value == 1.0


def test_evaluate_spec_and_state_is_not_logged(opt: OptimizerClient) -> None:
    head = opt.read_log(limit=1).head
    report = report_of(
        list(
            opt.evaluate(
                spec=pb.ProgramSpec(module="Predict", signature=SIG),
                state_json=saved_state(TINY_DEMOS),
                dataset=TINY,
            )
        )
    )
    assert report.program == "" and report.version == ""
    assert report.score == pytest.approx(0.5) and len(report.per_class) == 3
    assert opt.read_log(limit=1).head == head


def test_chain_of_thought_state_and_threads(opt: OptimizerClient) -> None:
    report = report_of(
        list(
            opt.evaluate(
                spec=pb.ProgramSpec(module="ChainOfThought", signature=SIG),
                state_json=saved_state(TINY_DEMOS, "ChainOfThought"),
                dataset=TINY,
                num_threads=4,
                include_results=True,
            )
        )
    )
    assert report.examples == 4 and report.errors == 0
    assert list(report.results[0].predicted) == ["label"]


def test_usage_counts_every_call_on_every_worker_thread(opt: OptimizerClient) -> None:
    """One usage tracker (the jobs' SharedUsageTracker): DSPy copies a context's tracker into
    each worker thread, and every copy must count into the one report."""

    def usage(threads: int) -> pb.Usage:
        events = opt.evaluate(
            spec=pb.ProgramSpec(module="Predict", signature=SIG),
            state_json=saved_state(TINY_DEMOS),
            dataset=VAL[:12],
            num_threads=threads,
        )
        return report_of(list(events)).usage

    one, four = usage(1), usage(4)
    assert one.lm_calls >= 12 and one.input_tokens > 0 and one.output_tokens > 0
    assert (four.lm_calls, four.input_tokens, four.output_tokens) == (
        one.lm_calls,
        one.input_tokens,
        one.output_tokens,
    )
    assert one.cost_usd == four.cost_usd == 0.0  # the offline connection has no prices


def test_prediction_and_metric_errors_are_counted_per_example(opt: OptimizerClient) -> None:
    events = list(
        opt.evaluate(
            "tiny", "1.0.0", dataset=TINY, metric="tests.support.metric_plugins:explode", include_results=True
        )
    )
    report = report_of(events)
    assert report.errors == 4 and report.score == 0
    assert all("RuntimeError: metric blew up" in r.error for r in report.results)


def test_graded_custom_metric_and_rouge(opt: OptimizerClient) -> None:
    report = report_of(
        list(opt.evaluate("tiny", "1.0.0", dataset=TINY, metric="tests.support.metric_plugins:half"))
    )
    assert report.score == pytest.approx(0.5) and report.accuracy == 0
    report = report_of(list(opt.evaluate("tiny", "1.0.0", dataset=TINY, metric="rouge_l")))
    assert report.metric == "rouge_l" and report.score == pytest.approx(0.5)


def test_non_allowlisted_metric_is_refused_and_never_imported(opt: OptimizerClient) -> None:
    head = opt.read_log(limit=1).head
    with pytest.raises(grpc.RpcError) as err:
        list(opt.evaluate("tiny", "1.0.0", dataset=TINY, metric="tests.support.metric_not_allowed:metric"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith("metric:") and "allowlist" in err.value.details()
    assert "tests.support.metric_not_allowed" not in sys.modules
    with pytest.raises(grpc.RpcError) as err:
        opt.compare_versions("tickets", "1.0.0", "1.1.0", dataset=VAL, metric="os:system")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and err.value.details().startswith("metric:")
    assert opt.read_log(limit=1).head == head


def test_compare_weak_vs_strong_is_significant(opt: OptimizerClient) -> None:
    result = opt.compare_versions("tickets", "1.0.0", "1.1.0", dataset=VAL)
    assert (result.a, result.b, result.examples, result.test) == ("1.0.0", "1.1.0", len(VAL), "mcnemar")
    assert result.score_b > result.score_a
    assert result.b_only > result.a_only
    assert result.p_value < 0.01
    assert result.verdict == "b better"


def test_compare_a_version_with_itself(opt: OptimizerClient) -> None:
    result = opt.compare_versions("tickets", "1.1.0", "1.1.0", dataset=VAL)
    assert result.p_value == 1.0 and result.a_only == result.b_only == 0
    assert result.verdict == "no significant difference"
    graded = opt.compare_versions("tickets", "1.1.0", "1.0.0", dataset=VAL, metric="rouge_l")
    assert graded.test in ("wilcoxon", "mcnemar") and graded.verdict == "a better"


# ---------------------------------------------------------------------- bad input


def _ev(**kw: object):
    return lambda c: list(c.evaluate(**kw))


BAD_CASES = [
    ("unknown program", _ev(program="nope", version="1.0.0", dataset=TINY), "NOT_FOUND", "program"),
    ("unknown version", _ev(program="tiny", version="9.9.9", dataset=TINY), "NOT_FOUND", "version"),
    ("no target", _ev(dataset=TINY), "INVALID_ARGUMENT", "program"),
    ("empty dataset", _ev(program="tiny", version="1.0.0"), "INVALID_ARGUMENT", "dataset"),
    (
        "row lacks the label",
        _ev(program="tiny", version="1.0.0", dataset=[{"text": "x"}]),
        "INVALID_ARGUMENT",
        "dataset[0].fields",
    ),
    (
        "too many examples",
        _ev(program="tiny", version="1.0.0", dataset=TINY * 1251),
        "INVALID_ARGUMENT",
        "dataset",
    ),
    (
        "unknown metric",
        _ev(program="tiny", version="1.0.0", dataset=TINY, metric="bleu"),
        "INVALID_ARGUMENT",
        "metric",
    ),
    (
        "threads out of range",
        _ev(program="tiny", version="1.0.0", dataset=TINY, num_threads=1000),
        "INVALID_ARGUMENT",
        "num_threads",
    ),
    (
        "malformed state_json",
        _ev(spec=pb.ProgramSpec(signature=SIG), state_json=b"{not json", dataset=TINY),
        "INVALID_ARGUMENT",
        "state_json",
    ),
    (
        "state for another module",
        _ev(
            spec=pb.ProgramSpec(module="ChainOfThought", signature=SIG),
            state_json=b'{"demos": []}',
            dataset=TINY,
        ),
        "INVALID_ARGUMENT",
        "state_json",
    ),
    (
        "oversized state_json",
        _ev(spec=pb.ProgramSpec(signature=SIG), state_json=b" " * (8 * 1024 * 1024 + 1), dataset=TINY),
        "INVALID_ARGUMENT",
        "state_json",
    ),
    (
        "both version and spec",
        _ev(program="tiny", version="1.0.0", spec=pb.ProgramSpec(signature=SIG), dataset=TINY),
        "INVALID_ARGUMENT",
        "spec",
    ),
    (
        "bad signature",
        _ev(spec=pb.ProgramSpec(signature="text"), state_json=b"{}", dataset=TINY),
        "INVALID_ARGUMENT",
        "spec.signature",
    ),
    (
        "dataset ref out of the datasets directory",
        _ev(program="tiny", version="1.0.0", dataset_ref="../t.jsonl"),
        "INVALID_ARGUMENT",
        "dataset_ref.path",
    ),
    (
        "both dataset and dataset_ref",
        _ev(program="tiny", version="1.0.0", dataset=TINY, dataset_ref="tiny.jsonl"),
        "INVALID_ARGUMENT",
        "dataset",
    ),
    (
        "compare unknown b",
        lambda c: c.compare_versions("tickets", "1.0.0", "7.0.0", dataset=VAL),
        "NOT_FOUND",
        "b",
    ),
    (
        "compare empty dataset",
        lambda c: c.compare_versions("tickets", "1.0.0", "1.1.0"),
        "INVALID_ARGUMENT",
        "dataset",
    ),
]


@pytest.mark.parametrize(("call", "code", "field"), [c[1:] for c in BAD_CASES], ids=[c[0] for c in BAD_CASES])
def test_bad_input_names_the_field_and_appends_nothing(
    opt: OptimizerClient, call: object, code: str, field: str
) -> None:
    head = opt.read_log(limit=1).head
    with pytest.raises(grpc.RpcError) as err:
        call(opt)  # type: ignore[operator]
    assert err.value.code() == getattr(grpc.StatusCode, code), err.value.details()
    assert err.value.details().startswith(f"{field}:") or err.value.details().startswith(f"{field} "), (
        err.value.details()
    )
    assert opt.read_log(limit=1).head == head
    assert opt.list_programs().programs  # still serving


# ---------------------------------------------------------------------- units


def test_paired_tests() -> None:
    strong, weak = [1.0] * 10, [0.0] * 10
    t = paired_test(weak, strong)
    assert (t.test, t.a_only, t.b_only) == ("mcnemar", 0, 10)
    assert t.p_value == pytest.approx(2 * 0.5**10)
    assert paired_test(strong, strong).p_value == 1.0
    graded = paired_test([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
    assert (graded.test, graded.p_value) == ("wilcoxon", 1.0)
    w = paired_test([0.9] * 12, [0.1 + 0.01 * i for i in range(12)])
    assert w.test == "wilcoxon" and w.p_value < 0.01
    assert verdict(0.9, 0.1, 0.001) == "a better" and verdict(0.1, 0.9, 0.001) == "b better"
    assert verdict(0.9, 0.1, 0.2) == "no significant difference"


def test_class_metrics_and_percentiles() -> None:
    per = {c.label: c for c in class_metrics(["a", "a", "b"], ["a", None, "B "])}
    assert per["a"].precision == 1 and per["a"].recall == 0.5 and per["b"].f1 == 1
    assert percentile([1, 2, 3, 4], 50) == 2.5 and percentile([5], 95) == 5 and percentile([], 50) == 0


def test_saved_state_helper_is_plain_dspy_json() -> None:
    body = json.loads(saved_state(TINY_DEMOS))
    assert body["demos"][0]["label"] == "billing" and "metadata" in body
