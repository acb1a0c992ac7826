"""Writing the mirror to MLflow with MlflowClient, idempotently: a run is found by its
`dspyops.job_id` tag, a model version by its `dspyops.version` tag, and only what MLflow
lacks is written (metrics by (key, step), params by key, the artifact by path), so a
second sync of the same log creates nothing. mlflow is imported lazily: it is an extra."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dspyops.mlflow_sync.mirror import JobRecord, Mirror, VersionRecord

MISSING = "mlflow sync: MLflow is not installed: pip install 'dspyops[mlflow]'"
CURSOR_TAG = "dspyops.synced_position"
STATE_FILE = "dspy/state.json"


class MlflowMissing(RuntimeError):
    pass


def default_artifact_location(tracking_uri: str) -> str | None:
    """Beside a SQLite store's file (so nothing lands in the working directory's ./mlruns);
    a server's or a directory store's own default otherwise."""
    prefix = "sqlite:///"  # then a relative path, or "/" and an absolute one (SQLAlchemy's form)
    if not tracking_uri.startswith(prefix) or len(tracking_uri) == len(prefix):
        return None
    path = os.path.abspath(tracking_uri[len(prefix) :].partition("?")[0])
    return "file://" + os.path.join(os.path.dirname(path), "mlflow-artifacts")


@dataclass
class Written:
    """What one sync created or changed (all zero: MLflow already mirrored the log)."""

    runs: int = 0
    metrics: int = 0
    params: int = 0
    artifacts: int = 0
    versions: int = 0
    aliases: int = 0
    tags: int = 0
    ended: int = 0
    position: int = 0
    notes: list[str] = field(default_factory=list)

    def total(self) -> int:
        return self.runs + self.metrics + self.params + self.artifacts + self.versions + self.aliases


class MlflowWriter:
    """One experiment of one tracking store (and its model registry)."""

    def __init__(self, tracking_uri: str, experiment: str, artifact_location: str | None = None) -> None:
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as exc:
            raise MlflowMissing(MISSING) from exc
        self.client: Any = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            location = artifact_location or default_artifact_location(tracking_uri)
            self.experiment_id: str = self.client.create_experiment(experiment, artifact_location=location)
        else:
            self.experiment_id = found.experiment_id
        self._runs: dict[str, Any] = {}  # job id -> run id

    # ------------------------------------------------------------------ runs

    def cursor(self) -> int:
        tags = self.client.get_experiment(self.experiment_id).tags
        return int(tags.get(CURSOR_TAG, "0") or 0)

    def set_cursor(self, position: int) -> None:
        if position > self.cursor():
            self.client.set_experiment_tag(self.experiment_id, CURSOR_TAG, str(position))

    def run_id(self, job_id: str) -> str | None:
        if job_id not in self._runs:
            runs = self.client.search_runs(
                [self.experiment_id], filter_string=f"tags.`dspyops.job_id` = '{job_id}'", max_results=1
            )
            if not runs:
                return None
            self._runs[job_id] = runs[0].info.run_id
        return str(self._runs[job_id])

    def job(self, job: JobRecord, state_json: Callable[[str, str], bytes | None], out: Written) -> None:
        """The job's run: created when missing, then whatever it lacks."""
        from mlflow.entities import Metric, Param, RunTag

        if not job.program:
            return  # its JobAccepted is not in what was read
        run_id = self.run_id(job.job_id)
        if run_id is None:
            run = self.client.create_run(
                self.experiment_id,
                start_time=job.started_ms or None,
                tags={"dspyops.job_id": job.job_id, "mlflow.runName": f"{job.program} {job.job_id}"},
            )
            run_id = self._runs[job.job_id] = run.info.run_id
            out.runs += 1
        run = self.client.get_run(run_id)
        have_params = run.data.params
        params = {"optimizer": job.optimizer, **job.params}
        new_params = [Param(k, v) for k, v in params.items() if k not in have_params]
        metrics = []
        histories: dict[str, set[int]] = {}
        for key, value, step, ms in job.metrics():
            if key not in histories:
                known = run.data.metrics
                histories[key] = (
                    {m.step for m in self.client.get_metric_history(run_id, key)} if key in known else set()
                )
            if step not in histories[key]:
                metrics.append(Metric(key, value, ms, step))
                histories[key].add(step)
        tags = {
            "dspyops.program": job.program,
            "dspyops.first_position": str(job.first_position),
            "dspyops.last_position": str(job.last_position),
        }
        if job.gate:
            tags["dspyops.gate"] = job.gate
            tags["dspyops.gate_reason"] = job.gate_reason[:5000]
        if job.version:
            tags["dspyops.version"] = job.version
        new_tags = [RunTag(k, v) for k, v in tags.items() if run.data.tags.get(k) != v]
        if new_params or metrics or new_tags:
            self.client.log_batch(run_id, metrics=metrics, params=new_params, tags=new_tags)
            out.params += len(new_params)
            out.metrics += len(metrics)
            out.tags += len(new_tags)
        if job.version and not self.client.list_artifacts(run_id, "dspy"):
            state = state_json(job.program, job.version)
            if state is not None:
                self.client.log_text(run_id, state.decode("utf-8"), STATE_FILE)
                out.artifacts += 1
        if job.end and run.info.status != job.end:
            self.client.set_terminated(run_id, job.end, end_time=job.ended_ms or None)
            out.ended += 1

    # ------------------------------------------------------------------ registry

    def _model_versions(self, program: str) -> dict[str, Any]:
        """dspyops version -> MLflow model version, of the registered model `program`."""
        found = self.client.search_model_versions(f"name='{program}'")
        return {mv.tags.get("dspyops.version"): mv for mv in found if mv.tags.get("dspyops.version")}

    def version(self, record: VersionRecord, out: Written) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(record.program)
        except MlflowException:
            self.client.create_registered_model(
                record.program, tags={"dspyops.program": record.program}, description="mirrored by dspyops"
            )
        tags = {
            **record.lineage,
            "dspyops.version": record.version,
            "dspyops.status": record.status,
            "dspyops.position": str(record.position),
        }
        existing = self._model_versions(record.program).get(record.version)
        if existing is None:
            run_id = self.run_id(record.job_id) if record.job_id else None
            source = (
                f"{self.client.get_run(run_id).info.artifact_uri}/dspy"
                if run_id
                else f"dspyops:{record.program}@{record.version}"  # imported: no job, no run
            )
            self.client.create_model_version(
                record.program, source, run_id=run_id, tags=tags, description=f"dspyops {record.version}"
            )
            out.versions += 1
            return
        for key, value in tags.items():
            if existing.tags.get(key) != value:
                self.client.set_model_version_tag(record.program, existing.version, key, value)
                out.tags += 1

    def aliases(self, program: str, aliases: dict[str, str], out: Written) -> None:
        """MLflow's aliases of `program` made what the log says: set, moved, or deleted."""
        versions = self._model_versions(program)
        # alias -> MLflow version (an int in some stores, text in others: compared as text)
        current = {a: str(v) for a, v in self.client.get_registered_model(program).aliases.items()}
        for alias, version in aliases.items():
            target = versions.get(version)
            if target is None:
                continue
            if current.get(alias) != str(target.version):
                self.client.set_registered_model_alias(program, alias, target.version)
                out.aliases += 1
        for alias in set(current) - set(aliases):  # none the log knows: moved away or never there
            self.client.delete_registered_model_alias(program, alias)
            out.aliases += 1

    # ------------------------------------------------------------------ all of it

    def write(
        self, mirror: Mirror, touched: set[tuple[str, str]], state_json: Callable[[str, str], bytes | None]
    ) -> Written:
        """Mirror what `touched` names (jobs first: a version's source is its job's run)."""
        out = Written(position=mirror.position)
        for job_id, job in mirror.jobs.items():
            if ("job", job_id) in touched:
                self.job(job, state_json, out)
        for (program, version), record in mirror.versions.items():  # in registration order
            if ("version", f"{program}@{version}") in touched:
                self.version(record, out)
        programs = {key for kind, key in touched if kind == "program"} | {
            key.partition("@")[0] for kind, key in touched if kind == "version"
        }
        for program in sorted(programs):
            if any(p == program for p, _ in mirror.versions):
                self.aliases(program, mirror.aliases.get(program, {}), out)
        self.set_cursor(mirror.position)
        return out
