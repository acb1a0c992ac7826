"""Benchmark 6: optimization overhead. BootstrapFewShot and MIPROv2 (auto=light) as jobs
through the optimizer service (a `dspyops serve optimizer` process; wall time from
StartOptimization to its `completed` event) vs the same optimizer compiled directly in this
process, same data (30 train / 20 val tickets), same params, offline engine.

Two direct baselines, run alternately with the service: `compile()` alone (shown, no goal: a
job also evaluates before and after), and compile plus the baseline and final evaluations a
job also runs (the same work). Goal (issue 17): service <= 1.2 x the same work.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from pathlib import Path

import dspy

from bench import common
from dspyops.client import OptimizerClient
from dspyops.connections import OFFLINE_ONLY
from dspyops.lm import LMConfig, build_lm
from dspyops.metrics import get_metric
from dspyops.programs.build import build_module
from dspyops.programs.spec import ProgramSpec
from optimizer_svc.optimizers.base import CompileInputs
from optimizer_svc.optimizers.registry import get_adapter, validate_params

CASES = {"BootstrapFewShot": {}, "MIPROv2": {"auto": "light"}}
GOAL = 1.2  # service / (compile + its evaluations, bare)


def rows() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    data = common.ticket_rows()
    return data[:30], data[30:50]


def direct(optimizer: str, params: dict, with_evals: bool) -> float:
    train_rows, val_rows = rows()
    trainset = [dspy.Example(**r).with_inputs("text") for r in train_rows]
    valset = [dspy.Example(**r).with_inputs("text") for r in val_rows]
    metric = get_metric("exact_match")
    adapter = get_adapter(optimizer)
    checked = validate_params(optimizer, params)
    quiet = io.StringIO()  # DSPy prints bootstrap notes and tqdm bars; the service's go to its log
    t0 = time.perf_counter()
    with (
        dspy.context(lm=build_lm(LMConfig(), OFFLINE_ONLY)),
        contextlib.redirect_stdout(quiet),
        contextlib.redirect_stderr(quiet),
    ):
        student = build_module(ProgramSpec(module="Predict", signature=common.SIGNATURE))
        inputs = CompileInputs(
            student=student, trainset=trainset, valset=valset, metric=metric, params=checked, prompt_lm=None
        )
        evaluate = dspy.Evaluate(
            devset=valset, metric=metric, num_threads=checked["num_threads"], display_progress=False
        )
        if with_evals:
            evaluate(student)
        compiled = adapter.compile(adapter.build(inputs), inputs)
        if with_evals:
            evaluate(compiled)
    return time.perf_counter() - t0


def via_service(client: OptimizerClient, optimizer: str, params: dict, run: int) -> float:
    train_rows, val_rows = rows()
    t0 = time.perf_counter()
    last = None
    for event in client.start_optimization(
        f"bench-{optimizer.lower()}-{run}",
        common.SIGNATURE,
        trainset=train_rows,
        valset=val_rows,
        optimizer=optimizer,
        params=params,
        input_keys=["text"],
    ):
        last = event
    elapsed = time.perf_counter() - t0
    if last is None or last.WhichOneof("kind") != "completed":
        raise RuntimeError(f"{optimizer} job did not complete: {last}")
    return elapsed


def main() -> None:
    args = common.parser(__doc__.splitlines()[0]).parse_args()
    common.banner("optimize", args.quick)
    reps = 1 if args.quick else 5
    logging.getLogger("dspy").setLevel(logging.ERROR)
    load_start = common.loadavg()
    results: dict[str, dict] = {}
    with common.tmpdir("optimize") as tmp:
        work = Path(tmp)
        server = common.ServeProcess("optimizer", work / "log.db", work, "--data-dir", str(work / "data"))
        try:
            with OptimizerClient(server.address) as client:
                via_service(client, "LabeledFewShot", {"k": 4}, 0)  # warm up the server
                direct("LabeledFewShot", {"k": 4}, True)
                for optimizer, params in CASES.items():
                    times: dict[str, list[float]] = {"service": [], "compile": [], "compile_and_evals": []}
                    for r in range(reps):
                        times["service"].append(via_service(client, optimizer, params, r))
                        times["compile"].append(direct(optimizer, params, False))
                        times["compile_and_evals"].append(direct(optimizer, params, True))
                    best = {k: min(v) for k, v in times.items()}
                    r_compile = best["service"] / best["compile"]
                    r_same = best["service"] / best["compile_and_evals"]
                    overhead = best["service"] - best["compile_and_evals"]
                    results[optimizer] = {
                        "times_s": times,
                        "best_s": best,
                        "ratio_vs_compile": r_compile,
                        "ratio_vs_same_work": r_same,
                        "overhead_s": overhead,
                    }
                    print(
                        f"  {optimizer:16s} service {best['service']:6.2f} s  "
                        f"compile() {best['compile']:6.2f} s  "
                        f"compile+evals {best['compile_and_evals']:6.2f} s  "
                        f"ratio vs compile {r_compile:.2f}; vs same work {r_same:.2f} "
                        f"{common.verdict(r_same, GOAL, False)}; +{overhead:.2f} s",
                        flush=True,
                    )
        finally:
            server.stop()
    common.save(
        "optimize",
        {
            "quick": args.quick,
            "loadavg_start": load_start,
            "reps": reps,
            "results": results,
            "goal": GOAL,
            "statistic": "best of reps",
        },
    )


if __name__ == "__main__":
    main()
