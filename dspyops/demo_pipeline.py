"""The demo's multi-stage program: retrieve the help-centre article for a ticket, then label
the ticket with the article beside it.

A declarative pipeline (no Python of the user's: any gRPC client can send it) of two
stages: ``search`` (Retrieve, BM25 over the help-centre corpus shipped in
``dspyops/data/corpora/help_centre.jsonl``) and ``classify`` (Predict, ``text, passages -> label``).
It is optimized with MIPROv2 instruction-only (no demos: the offline engine follows the rules
the proposer mines from the examples it is shown) and with BootstrapFewShot, deployed,
served with traces and a capture policy, and explained stage by stage.
"""

from __future__ import annotations

import json
import time

from rich.rule import Rule
from rich.table import Table

from dspyops.client import GatewayClient, OptimizerClient
from dspyops.datasets import DATA_DIR
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from dspyops.render.console import console
from dspyops.render.jobs import render_job_events, scores_table

CORPUS = "help-centre"
PROGRAM = "ticket-triage"
DEPLOYMENT = "help-desk"
# instruction-only MIPROv2 (zero demos) next to BootstrapFewShot's demos
RUNS: tuple[tuple[str, dict[str, object]], ...] = (
    (
        "MIPROv2",
        {"auto": "light", "max_bootstrapped_demos": 0, "max_labeled_demos": 0, "num_threads": 1},
    ),
    ("BootstrapFewShot", {"max_bootstrapped_demos": 4, "max_labeled_demos": 8}),
)


def triage_spec(corpus: str = CORPUS, k: int = 1) -> pb.ProgramSpec:
    """search (Retrieve, k passages) -> classify (Predict): the articles go beside the ticket."""
    return pb.ProgramSpec(
        module="Pipeline",
        pipeline=pb.Pipeline(
            stages=[
                pb.Stage(name="search", kind="Retrieve", corpus=corpus, k=k, inputs={"query": "input.text"}),
                pb.Stage(
                    name="classify",
                    kind="Predict",
                    signature="text, passages: list[str] -> label",
                    inputs={"text": "input.text", "passages": "search.passages"},
                ),
            ],
            outputs={"label": "classify.label"},
        ),
    )


def help_centre() -> list[dict[str, str]]:
    """The shipped help-centre articles, as RegisterCorpus documents (id, text)."""
    text = (DATA_DIR / "corpora" / "help_centre.jsonl").read_text(encoding="utf-8")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [{"id": row["id"], "text": row["text"]} for row in rows]


def _optimize(
    opt: OptimizerClient,
    optimizer: str,
    params: dict[str, object],
    rows: list[dict[str, str]],
    val_fraction: float,
    split_seed: int,
) -> pb.JobCompleted:
    console.print(Rule(f"{optimizer} on the two-stage {PROGRAM} (retrieve, then classify)"))
    events = opt.start_optimization(
        PROGRAM,
        spec=triage_spec(),
        trainset=rows,
        val_fraction=val_fraction,
        split_seed=split_seed,
        input_keys=["text"],
        optimizer=optimizer,
        params=params,
        metric="exact_match",
    )
    last = render_job_events(events, as_json=False)
    if last is None or last.WhichOneof("kind") != "completed":
        raise RuntimeError(f"{optimizer} did not complete: {last}")
    return last.completed


def _stage_table(trace: list[pb.ModuleCall], title: str) -> Table:
    table = Table(title=title)
    for column in ("module call", "class", "inputs", "outputs", "ms", "LM calls"):
        table.add_column(column, overflow="fold")
    for call in trace:
        table.add_row(
            call.name,
            call.module,
            ", ".join(f"{k}={v[:40]!r}" for k, v in sorted(call.inputs.items())),
            ", ".join(f"{k}={v[:40]!r}" for k, v in sorted(call.outputs.items())),
            f"{call.latency_ms:.2f}",
            str(call.usage.lm_calls),
        )
    return table


def multi_stage(
    opt: OptimizerClient,
    gw: GatewayClient,
    rows: list[dict[str, str]],
    valset: list[dict[str, str]],
    val_fraction: float,
    split_seed: int,
) -> bool:
    """Register the corpus, optimize the pipeline twice, deploy the better version, serve it
    with traces and explain one prediction. False when a step did not do what it shows."""
    console.print(Rule(f"a multi-stage program: retrieve from the {CORPUS} corpus, then classify"))
    corpus: opb.Corpus = opt.register_corpus(CORPUS, help_centre())
    console.print(f"corpus {corpus.corpus}: {corpus.count} articles, sha256 {corpus.digest[:16]}...")
    results = [(name, _optimize(opt, name, params, rows, val_fraction, split_seed)) for name, params in RUNS]
    table = scores_table(f"{PROGRAM}: baseline vs optimized (exact match on the validation split)", results)
    console.print(table)
    if any(done.final_score <= done.baseline_score for _, done in results):
        console.print("[red]an optimized pipeline did not beat its baseline[/red]")
        return False

    best = max(results, key=lambda r: r[1].final_score)[1]
    opt.set_version_status(PROGRAM, best.version, "production", reason="best pipeline in the demo")
    opt.create_deployment(DEPLOYMENT, PROGRAM)
    # keep each prediction's module calls (ticket text is not personal data here), for a week
    deployment = opt.set_capture_policy(DEPLOYMENT, traces=True, retention_days=7, reason="demo: keep traces")
    while gw.get_deployment_state(DEPLOYMENT).log_position < deployment.log_position:
        time.sleep(0.001)  # the gateway tails the log: it serves the deployment once it has folded it
    console.print(f"deployment {DEPLOYMENT}: {PROGRAM} {best.version}, traces kept for 7 days")

    correct = 0
    first: tuple[str, dict[str, str]] | None = None
    for i, row in enumerate(valset):
        response = gw.predict(
            DEPLOYMENT, {"text": row["text"]}, routing_key=f"desk-{i}", include_trace=i == 0
        )
        correct += response.outputs["label"].strip().lower() == row["label"].lower()
        if i == 0:
            first = (response.prediction_id, row)
            console.print(
                _stage_table(list(response.trace), f"trace of one prediction: {row['text'][:60]!r}")
            )
    console.print(f"served {len(valset)} validation tickets: {correct / len(valset):.0%} correct")
    assert first is not None
    explained = gw.explain_prediction(first[0])
    console.print(
        f"explain {first[0][:12]}: {PROGRAM} {explained.recorded_version}, "
        + ", ".join(
            f"{s.stage} on {s.connection}" + (f"/{s.model}" if s.model else "") for s in explained.stage_lms
        )
        + f"; {len(explained.trace)} module calls kept; decision reproduced: {explained.reproduced}"
    )
    kept = {call.name for call in explained.trace}
    return explained.reproduced and {"search", "classify"} <= kept


__all__ = ["CORPUS", "DEPLOYMENT", "PROGRAM", "help_centre", "multi_stage", "triage_spec"]
