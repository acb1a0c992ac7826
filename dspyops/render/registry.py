"""The registry as people read it: programs, a program's versions, one version."""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table

from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb


def status_name(value: int) -> str:
    return pb.VersionStatus.Name(value).lower()


def programs_table(programs: Iterable[opb.ProgramInfo]) -> Table:
    table = Table(title="programs")
    for column in ("program", "versions", "production", "aliases"):
        table.add_column(column)
    for p in programs:
        aliases = ", ".join(f"@{a}={v}" for a, v in sorted(p.aliases.items()))
        table.add_row(p.program, ", ".join(p.versions), p.production_version or "-", aliases or "-")
    return table


def versions_table(program: str, versions: Iterable[opb.ProgramVersion]) -> Table:
    table = Table(title=f"versions of {program}")
    for column in ("version", "status", "optimizer", "baseline", "score", "job", "artifact", "aliases"):
        table.add_column(column)
    for v in versions:
        table.add_row(
            v.version,
            status_name(v.status),
            v.lineage.optimizer,
            f"{v.lineage.baseline_score:.3f}",
            f"{v.lineage.final_score:.3f}",
            v.lineage.job_id,
            v.artifact_digest[:12],
            ", ".join("@" + a for a in v.aliases) or "-",
        )
    return table


def version_lines(v: opb.ProgramVersion) -> list[str]:
    """One version in a few lines (`dspyops registry version`)."""
    lineage = v.lineage
    aliases = ", ".join("@" + a for a in v.aliases) or "none"
    lines = [
        f"{v.program} {v.version} ({status_name(v.status)}), aliases {aliases}, registered at log "
        f"position {v.registered_position}",
        *program_lines(v.spec),
        f"  LM: connection {v.lm.connection or 'offline'}" + (f", model {v.lm.model}" if v.lm.model else ""),
        f"  artifact {v.artifact_digest}",
    ]
    if lineage.job_id:
        lines.append(
            f"  from job {lineage.job_id}: {lineage.optimizer}, baseline {lineage.baseline_score:.3f}, "
            f"score {lineage.final_score:.3f}"
        )
    for module, digest in sorted(lineage.code_digests.items()):
        lines.append(f"  code {module} sha256 {digest[:16]}...")
    if lineage.code_distribution:
        lines.append(f"  from distribution {lineage.code_distribution} {lineage.code_version}")
    for stage, digest in sorted(lineage.corpora.items()):
        lines.append(f"  {stage} searches corpus sha256 {digest[:16]}...")
    return lines


def program_lines(spec: pb.ProgramSpec) -> list[str]:
    """What a spec is: one predictor, a pipeline's stages and wiring, or a user module."""
    wrapper = f"{spec.wrapper} of " if spec.wrapper else ""
    if spec.module == "Pipeline":
        lines = [f"  {wrapper}pipeline of {len(spec.pipeline.stages)} stages"]
        for stage in spec.pipeline.stages:
            what = (
                f"corpus {stage.corpus!r}, k {stage.k or 3}"
                if stage.kind == "Retrieve"
                else repr(stage.signature)
            )
            wired = ", ".join(f"{k}<-{v}" for k, v in sorted(stage.inputs.items()))
            tools = f", tools {', '.join(stage.tools)}" if stage.tools else ""
            lines.append(f"    {stage.name}: {stage.kind} {what} ({wired}){tools}")
        lines.append(
            "    outputs " + ", ".join(f"{k}<-{v}" for k, v in sorted(spec.pipeline.outputs.items()))
        )
        return lines
    if ":" in spec.module:
        args = f", init_args {spec.init_args[:80]}" if spec.init_args else ""
        return [f"  {wrapper}user module {spec.module}{args}"]
    instructions = f", instructions {spec.instructions[:80]!r}" if spec.instructions else ""
    return [f"  {wrapper}dspy.{spec.module}({spec.signature!r}){instructions}"]
