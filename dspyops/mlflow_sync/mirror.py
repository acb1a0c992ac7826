"""The log read into what MLflow mirrors: one JobRecord per job, one VersionRecord per
registered version, each program's aliases. Pure: events in, records out, no MLflow here,
so what a sync writes is decided by the log alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format

from dspyops.proto import events_pb2 as pb

# the event types the mirror reads (ReadLog / SubscribeLog filter on them server-side)
TYPES = (
    "JobAccepted",
    "JobStarted",
    "BaselineEvaluated",
    "TrialCompleted",
    "GateEvaluated",
    "JobCompleted",
    "JobFailed",
    "JobCancelled",
    "JobInterrupted",
    "VersionRegistered",
    "VersionStatusChanged",
    "AliasSet",
)

ENDED = {"job_completed": "FINISHED", "job_failed": "FAILED", "job_cancelled": "KILLED"}


@dataclass
class JobRecord:
    job_id: str
    program: str = ""
    optimizer: str = ""
    params: dict[str, str] = field(default_factory=dict)
    started_ms: int = 0
    ended_ms: int = 0
    end: str = ""  # "" while it runs; FINISHED, FAILED or KILLED (MLflow's run statuses)
    baseline: float | None = None
    trials: dict[int, tuple[float, float, int]] = field(default_factory=dict)  # step -> score, best, ms
    final_score: float | None = None
    usage: pb.Usage | None = None
    gate: str = ""  # "passed" | "failed" | "" (no gate evaluated)
    gate_reason: str = ""
    version: str = ""  # the version it registered (or named), when it completed
    first_position: int = 0
    last_position: int = 0

    def metrics(self) -> list[tuple[str, float, int, int]]:
        """(key, value, step, timestamp ms) of every metric the run carries."""
        out: list[tuple[str, float, int, int]] = []
        if self.baseline is not None:
            out.append(("baseline_score", self.baseline, 0, self.started_ms))
        for step, (score, best, ms) in sorted(self.trials.items()):
            out += [("trial_score", score, step, ms), ("best_score", best, step, ms)]
        if self.final_score is not None:
            out.append(("final_score", self.final_score, 0, self.ended_ms))
        if self.usage is not None:
            u = self.usage
            for key, value in (
                ("lm_calls", u.lm_calls),
                ("input_tokens", u.input_tokens),
                ("output_tokens", u.output_tokens),
                ("cost_usd", u.cost_usd),
                ("replayed_lm_calls", u.replayed_lm_calls),
            ):
                out.append((key, float(value), 0, self.ended_ms))
        return out


@dataclass
class VersionRecord:
    program: str
    version: str
    status: str
    job_id: str
    lineage: dict[str, str]
    position: int
    registered_ms: int


@dataclass
class Mirror:
    """What the log says, as far as it was read (`position`)."""

    jobs: dict[str, JobRecord] = field(default_factory=dict)
    versions: dict[tuple[str, str], VersionRecord] = field(default_factory=dict)  # in registration order
    aliases: dict[str, dict[str, str]] = field(default_factory=dict)  # program -> alias -> version
    must_beat: dict[str, str] = field(default_factory=dict)  # job id -> the version it had to beat
    position: int = 0

    def apply(self, event: pb.Event) -> tuple[str, str] | None:
        """Fold one event in; what it touched: ("job", id), ("version", "program@version"),
        ("program", name), or None."""
        self.position = max(self.position, event.position)
        kind = event.payload.WhichOneof("kind")
        ms = event.recorded_at.seconds * 1000 + event.recorded_at.nanos // 1_000_000
        if event.stream.startswith("job-") and kind is not None:
            return self._job_event(event, kind, ms)
        if kind == "version_registered":
            return self._registered(event, ms)
        if kind == "version_status_changed":
            changed = event.payload.version_status_changed
            record = self.versions.get((changed.program, changed.version))
            if record is None:
                return None
            record.status = _status(changed.status)
            return ("version", f"{changed.program}@{changed.version}")
        if kind == "alias_set":
            alias = event.payload.alias_set
            self.aliases.setdefault(alias.program, {})[alias.alias] = alias.version
            return ("program", alias.program)
        return None

    def _job_event(self, event: pb.Event, kind: str, ms: int) -> tuple[str, str] | None:
        job_id = event.stream.removeprefix("job-")
        job = self.jobs.setdefault(job_id, JobRecord(job_id, first_position=event.position))
        job.last_position = event.position
        payload: Any = getattr(event.payload, kind)
        if kind == "job_accepted":
            job.program, job.optimizer, job.started_ms = payload.program, payload.optimizer, ms
            params = json_format.MessageToDict(payload.params)
            job.params = {str(k): _param(v) for k, v in params.items()}
            job.params.update(
                metric=payload.metric,
                trainset_digest=payload.trainset_digest,
                valset_digest=payload.valset_digest,
                trainset_size=str(payload.trainset_size),
                valset_size=str(payload.valset_size),
            )
            if payload.inputs.must_beat_version:
                self.must_beat[job_id] = payload.inputs.must_beat_version
        elif kind == "job_started":
            job.optimizer = job.optimizer or payload.optimizer
        elif kind == "baseline_evaluated":
            job.baseline = payload.score
        elif kind == "trial_completed":
            job.trials[payload.trial] = (payload.score, payload.best_score, ms)
        elif kind == "gate_evaluated":
            job.gate, job.gate_reason = ("passed" if payload.passed else "failed"), payload.reason
        elif kind in ENDED:
            job.end, job.ended_ms = ENDED[kind], ms
            job.usage = payload.usage
            if kind == "job_completed":
                job.final_score, job.version = payload.final_score, payload.version
                if not job.gate:  # a job without a GateEvaluated: JobCompleted says how its gate went
                    job.gate = "passed" if payload.gate_passed else "failed"
                    job.gate_reason = payload.gate_reason
        elif kind == "job_interrupted":
            job.end, job.ended_ms = "KILLED", ms
        return ("job", job_id)

    def _registered(self, event: pb.Event, ms: int) -> tuple[str, str]:
        registered = event.payload.version_registered
        lineage = registered.lineage
        tags = {
            "dspyops.job_id": lineage.job_id,
            "dspyops.optimizer": lineage.optimizer,
            "dspyops.metric": lineage.metric,
            "dspyops.trainset_digest": lineage.trainset_digest,
            "dspyops.valset_digest": lineage.valset_digest,
            "dspyops.artifact_digest": registered.artifact_digest,
            "dspyops.dspy_version": lineage.dspy_version,
            "dspyops.parent": self.must_beat.get(lineage.job_id, ""),
        }
        tags.update({f"dspyops.corpus.{stage}": digest for stage, digest in lineage.corpora.items()})
        record = VersionRecord(
            program=registered.program,
            version=registered.version,
            status=_status(registered.status),
            job_id=lineage.job_id,
            lineage={key: value for key, value in tags.items() if value},
            position=event.position,
            registered_ms=ms,
        )
        self.versions[(record.program, record.version)] = record
        return ("version", f"{record.program}@{record.version}")


def _status(status: int) -> str:
    return pb.VersionStatus.Name(status).lower()


def _param(value: object) -> str:
    """A parameter as MLflow keeps it (text); integers JSON gave back as floats stay integers."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
