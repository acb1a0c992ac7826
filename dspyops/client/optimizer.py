"""OptimizerClient: one method per RPC of optimizer_svc (jobs, catalog, registry,
deployments, evaluation, the log), every request field a parameter.

Unary methods return the response message as it is (a list RPC's response carries the
list: `opt.list_jobs().jobs`); streaming methods return the iterator of messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from dspyops.client import failover
from dspyops.client import messages as msg
from dspyops.client.channel import Client, new_request_id, rpc
from dspyops.client.messages import Row
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from dspyops.proto import optimizer_pb2_grpc

_SPEC = ("signature", "module", "instructions")  # the friendly form of a ProgramSpec


class OptimizerClient(Client):
    """optimizer_svc at `address`:

    with OptimizerClient("127.0.0.1:50051") as opt:
        for event in opt.start_optimization("tickets", "text -> label", trainset=rows,
                                            optimizer="BootstrapFewShot", val_fraction=0.3):
            print(event)
    """

    def __init__(self, address: str, timeout: float | None = 30.0, **options: Any) -> None:
        super().__init__(address, timeout, **options)
        # kept public: tests that must send a malformed message call it directly
        self.stub = optimizer_pb2_grpc.OptimizerStub(self.channel)  # type: ignore[no-untyped-call]

    # ------------------------------------------------------------------ jobs

    @rpc("StartOptimization", spec=_SPEC)
    def start_optimization(
        self,
        program: str,
        signature: str = "",
        *,
        module: str = "Predict",
        instructions: str = "",
        lm: pb.LMConfig | None = None,
        optimizer: str = "",
        params: Mapping[str, Any] | Struct | None = None,
        metric: str = "exact_match",
        trainset: Iterable[Row | pb.Example] = (),
        valset: Iterable[Row | pb.Example] = (),
        min_score: float | None = None,
        auto_promote: bool = False,
        prompt_lm: pb.LMConfig | None = None,
        preset: str = "",
        must_beat: str = "",
        min_improvement: float | None = None,
        budget: pb.Budget | None = None,
        trainset_ref: str | opb.DatasetRef | None = None,
        valset_ref: str | opb.DatasetRef | None = None,
        val_fraction: float = 0.0,
        split_seed: int = 0,
        input_keys: Sequence[str] = (),
        request_id: str | None = None,
        timeout: float | None = None,
        spec: pb.ProgramSpec | None = None,
        max_attempts: int = 0,
        base_trainset_job: str = "",
        learning: pb.JobLearning | None = None,
    ) -> Iterator[opb.OptimizationEvent]:
        """StartOptimization: the job's events, JobAccepted first, until it completes, fails
        or is cancelled. `val_fraction` splits the trainset on the server (seeded by
        `split_seed`) when no valset is given; `input_keys` applies to rows and to refs given
        as paths. Sent again with the same request_id (or re-attached to with watch_job), a
        request streams the job it started instead of starting another.
        `base_trainset_job` trains on that job's trainset followed by `trainset`, and
        `learning` names a learning run on record (the gateway's learning loop sends both).

            events = opt.start_optimization("tickets", "text -> label", trainset=rows,
                                            optimizer="LabeledFewShot", params={"k": 4})
            last = list(events)[-1]  # last.completed.version == "1.0.0"
        """
        request = opb.StartOptimizationRequest(
            program=program,
            # `spec` (a pipeline, a user module with init_args) replaces module/signature/instructions
            spec=spec or pb.ProgramSpec(module=module, signature=signature, instructions=instructions),
            lm=lm or pb.LMConfig(),
            optimizer=optimizer,
            params=msg.struct(params),
            metric=metric,
            trainset=msg.examples(trainset, input_keys),
            valset=msg.examples(valset, input_keys),
            auto_promote=auto_promote,
            preset=preset,
            must_beat=must_beat,
            val_fraction=val_fraction,
            split_seed=split_seed,
            request_id=request_id or new_request_id(),
            max_attempts=max_attempts,  # 0: the server's --job-max-attempts
            base_trainset_job=base_trainset_job,
            learning=learning,
        )
        if min_score is not None:
            request.min_score = min_score
        if prompt_lm is not None:
            request.prompt_lm.CopyFrom(prompt_lm)
        if min_improvement is not None:
            request.min_improvement = min_improvement
        if budget is not None:
            request.budget.CopyFrom(budget)
        if trainset_ref is not None:
            request.trainset_ref.CopyFrom(msg.dataset_ref(trainset_ref, input_keys))
        if valset_ref is not None:
            request.valset_ref.CopyFrom(msg.dataset_ref(valset_ref, input_keys))
        return self._stream(self.stub.StartOptimization, request, opb.OptimizationEvent, timeout)

    @rpc("WatchJob")
    def watch_job(
        self,
        job_id: str,
        after_sequence: int = 0,
        *,
        after_stream_version: int = 0,
        targets: Sequence[str] = (),
        timeout: float | None = None,
    ) -> Iterator[opb.OptimizationEvent]:
        """WatchJob: a job's events after `after_sequence` (this server's numbering) and
        `after_stream_version` (the log's, the same on every replica), then live until it ends.

        `targets`: other optimizer replicas on the same log. When the server goes away
        (UNAVAILABLE), the watch goes on at the next one (round the list, this client's
        address first) from the last stream_version it saw, so no logged event is repeated
        or lost; it gives up when every target failed in a row without an event between.
        (`after_sequence` is the first server's numbering: a switch before any event was seen
        resumes from `after_stream_version`.) With targets the result is a plain generator
        (close it to stop); without, the gRPC call's iterator as always.

            for event in opt.watch_job("job-3f2a", after_sequence=4): print(event.sequence)
            for event in opt.watch_job("job-3f2a", targets=["10.0.0.2:50051"]): ...
        """
        request = opb.WatchJobRequest(
            job_id=job_id, after_sequence=after_sequence, after_stream_version=after_stream_version
        )
        if not targets:
            return self._stream(self.stub.WatchJob, request, opb.OptimizationEvent, timeout)
        return failover.watch(self, request, targets, timeout)

    @rpc("CancelJob")
    def cancel_job(self, job_id: str, reason: str = "") -> opb.Job:
        """CancelJob: asks a job to stop; returns the job as it is now.

        opt.cancel_job("job-3f2a", "wrong dataset").state  # RUNNING until it stops
        """
        return self._unary(self.stub.CancelJob, opb.CancelJobRequest(job_id=job_id, reason=reason), opb.Job)

    @rpc("GetJob")
    def get_job(self, job_id: str) -> opb.Job:
        """GetJob: one job's state, scores and version.

        opt.get_job("job-3f2a").final_score
        """
        return self._unary(self.stub.GetJob, opb.GetJobRequest(job_id=job_id), opb.Job)

    @rpc("ListJobs")
    def list_jobs(self, program: str = "") -> opb.ListJobsResponse:
        """ListJobs: every job, or a program's.

        [job.job_id for job in opt.list_jobs("tickets").jobs]
        """
        return self._unary(self.stub.ListJobs, opb.ListJobsRequest(program=program), opb.ListJobsResponse)

    # ------------------------------------------------------------------ catalog

    @rpc("ListOptimizers")
    def list_optimizers(self) -> opb.ListOptimizersResponse:
        """ListOptimizers: the optimizers with their parameter schemas, and the presets.

        [o.name for o in opt.list_optimizers().optimizers]  # ["BootstrapFewShot", ...]
        """
        return self._unary(self.stub.ListOptimizers, opb.ListOptimizersRequest(), opb.ListOptimizersResponse)

    @rpc("ListConnections")
    def list_connections(self) -> pb.ListConnectionsResponse:
        """ListConnections: the LM connections this optimizer was started with (never a key).

        [c.name for c in opt.list_connections().connections]  # ["offline", ...]
        """
        return self._unary(self.stub.ListConnections, pb.ListConnectionsRequest(), pb.ListConnectionsResponse)

    # ------------------------------------------------------------------ registry

    @rpc("ListPrograms")
    def list_programs(self) -> opb.ListProgramsResponse:
        """ListPrograms: each program with its versions, aliases and production version.

        {p.program: p.production_version for p in opt.list_programs().programs}
        """
        return self._unary(self.stub.ListPrograms, opb.ListProgramsRequest(), opb.ListProgramsResponse)

    @rpc("ListVersions")
    def list_versions(self, program: str) -> opb.ListVersionsResponse:
        """ListVersions: a program's versions, oldest first.

        [v.version for v in opt.list_versions("tickets").versions]  # ["1.0.0", "1.1.0"]
        """
        return self._unary(
            self.stub.ListVersions, opb.ListVersionsRequest(program=program), opb.ListVersionsResponse
        )

    @rpc("GetVersion")
    def get_version(self, program: str, version: str) -> opb.ProgramVersion:
        """GetVersion: one version (semver or @alias) with its spec, LM and lineage.

        opt.get_version("tickets", "@champion").lineage.final_score
        """
        request = opb.GetVersionRequest(program=program, version=version)
        return self._unary(self.stub.GetVersion, request, opb.ProgramVersion)

    @rpc("SetVersionStatus")
    def set_version_status(
        self,
        program: str,
        version: str,
        status: str | int,
        reason: str = "",
        *,
        request_id: str | None = None,
    ) -> opb.ProgramVersion:
        """SetVersionStatus: status by name ("production", "staging", ...) or pb value;
        promoting to production deprecates the previous production version.

        opt.set_version_status("tickets", "1.1.0", "production", "best on the valset")
        """
        request = opb.SetVersionStatusRequest(
            program=program,
            version=version,
            status=msg.status(status),
            reason=reason,
            request_id=request_id or new_request_id(),
        )
        return self._send(self.stub.SetVersionStatus, request, opb.ProgramVersion)

    @rpc("SetAlias")
    def set_alias(
        self, program: str, alias: str, version: str, *, request_id: str | None = None
    ) -> opb.ProgramInfo:
        """SetAlias: points an alias (with or without "@") at a version.

        opt.set_alias("tickets", "champion", "1.1.0").aliases["champion"]  # "1.1.0"
        """
        request = opb.SetAliasRequest(
            program=program, alias=alias, version=version, request_id=request_id or new_request_id()
        )
        return self._send(self.stub.SetAlias, request, opb.ProgramInfo)

    @rpc("ImportProgram", spec=_SPEC)
    def import_program(
        self,
        program: str,
        signature: str,
        state_json: bytes,
        *,
        module: str = "Predict",
        instructions: str = "",
        lm: pb.LMConfig | None = None,
        request_id: str | None = None,
        spec: pb.ProgramSpec | None = None,
    ) -> opb.ProgramVersion:
        """ImportProgram: registers a state saved by plain DSPy (program.save("x.json")).
        `spec` (a pipeline, a user module) replaces module/signature/instructions.

        opt.import_program("tickets", "text -> label", Path("x.json").read_bytes()).version
        """
        request = opb.ImportProgramRequest(
            program=program,
            spec=spec or pb.ProgramSpec(module=module, signature=signature, instructions=instructions),
            state_json=state_json,
            lm=lm or pb.LMConfig(),
            request_id=request_id or new_request_id(),
        )
        return self._send(self.stub.ImportProgram, request, opb.ProgramVersion)

    @rpc("ExportVersion")
    def export_version(self, program: str, version: str) -> opb.ExportVersionResponse:
        """ExportVersion: a version's state as JSON that plain DSPy loads with program.load().

        Path("x.json").write_bytes(opt.export_version("tickets", "1.1.0").state_json)
        """
        request = opb.ExportVersionRequest(program=program, version=version)
        return self._unary(self.stub.ExportVersion, request, opb.ExportVersionResponse)

    # ------------------------------------------------------------------ corpora

    @rpc("RegisterCorpus")
    def register_corpus(
        self,
        corpus: str,
        documents: Iterable[Mapping[str, str] | pb.Document] = (),
        *,
        source: str | opb.DatasetRef | None = None,
        text_field: str = "",
        id_field: str = "",
        request_id: str | None = None,
    ) -> opb.Corpus:
        """RegisterCorpus: documents ({"id", "text"} each) for Retrieve stages, inline or from a
        JSONL/CSV `source` under the server's --datasets-dir (`text_field`, `id_field`: its columns).

        opt.register_corpus("help", [{"id": "refunds", "text": "Refunds take 5 days."}]).digest
        """
        request = opb.RegisterCorpusRequest(
            corpus=corpus,
            documents=[msg.document(d) for d in documents],
            text_field=text_field,
            id_field=id_field,
            request_id=request_id or new_request_id(),
        )
        if source is not None:
            request.source.CopyFrom(msg.dataset_ref(source))
        return self._send(self.stub.RegisterCorpus, request, opb.Corpus)

    @rpc("ListCorpora")
    def list_corpora(self) -> opb.ListCorporaResponse:
        """ListCorpora: every corpus name, the digest it points to and its document count.

        [(c.corpus, c.count) for c in opt.list_corpora().corpora]
        """
        return self._unary(self.stub.ListCorpora, opb.ListCorporaRequest(), opb.ListCorporaResponse)

    # ------------------------------------------------------------------ deployments

    @rpc("CreateDeployment")
    def create_deployment(
        self, deployment: str, program: str, *, request_id: str | None = None
    ) -> opb.Deployment:
        """CreateDeployment: a deployment of a program (routed to its production version).

        opt.create_deployment("web", "tickets").routes
        """
        request = opb.CreateDeploymentRequest(
            deployment=deployment, program=program, request_id=request_id or new_request_id()
        )
        return self._send(self.stub.CreateDeployment, request, opb.Deployment)

    @rpc("SetRoutes")
    def set_routes(
        self,
        deployment: str,
        routes: Mapping[str, float] | Sequence[pb.Route],
        *,
        expected_version: int | None = None,
        reason: str = "",
        request_id: str | None = None,
    ) -> opb.Deployment:
        """SetRoutes: {version: weight} (primary routes), or Route messages for shadow routes;
        `expected_version` (the deployment's stream_version) makes it fail if another change
        came first.

        opt.set_routes("web", {"1.1.0": 0.9, "1.0.0": 0.1}, reason="90/10")
        """
        request = opb.SetRoutesRequest(
            deployment=deployment,
            routes=msg.routes(routes),
            reason=reason,
            request_id=request_id or new_request_id(),
        )
        if expected_version is not None:
            request.expected_version = expected_version
        return self._send(self.stub.SetRoutes, request, opb.Deployment)

    @rpc("SetCapturePolicy", policy=("traces", "inputs_outputs", "fields", "retention_days"))
    def set_capture_policy(
        self,
        deployment: str,
        *,
        traces: bool = False,
        inputs_outputs: bool = False,
        fields: Sequence[str] = (),
        retention_days: int = 0,
        expected_version: int | None = None,
        reason: str = "",
        request_id: str | None = None,
    ) -> opb.Deployment:
        """SetCapturePolicy: what the deployment's prediction records keep beyond the decision
        (traces, inputs; only `fields` of them when given) and for how many days (0: kept).
        All flags off: nothing more is kept.

        opt.set_capture_policy("web", traces=True, fields=["label"], retention_days=30).capture
        """
        policy = pb.CapturePolicy(
            traces=traces, inputs_outputs=inputs_outputs, fields=list(fields), retention_days=retention_days
        )
        request = opb.SetCapturePolicyRequest(
            deployment=deployment, policy=policy, reason=reason, request_id=request_id or new_request_id()
        )
        if expected_version is not None:
            request.expected_version = expected_version
        return self._send(self.stub.SetCapturePolicy, request, opb.Deployment)

    @rpc("GetDeployment")
    def get_deployment(self, deployment: str) -> opb.Deployment:
        """GetDeployment: a deployment's routes and stream version, as the registry has them.

        opt.get_deployment("web").stream_version
        """
        return self._unary(
            self.stub.GetDeployment, opb.GetDeploymentRequest(deployment=deployment), opb.Deployment
        )

    @rpc("ListDeployments")
    def list_deployments(self) -> opb.ListDeploymentsResponse:
        """ListDeployments: every deployment, by name.

        [d.deployment for d in opt.list_deployments().deployments]
        """
        return self._unary(
            self.stub.ListDeployments, opb.ListDeploymentsRequest(), opb.ListDeploymentsResponse
        )

    # ------------------------------------------------------------------ evaluation

    @rpc("Evaluate")
    def evaluate(
        self,
        program: str = "",
        version: str = "",
        *,
        spec: pb.ProgramSpec | None = None,
        state_json: bytes = b"",
        lm: pb.LMConfig | None = None,
        dataset: Iterable[Row | pb.Example] = (),
        dataset_ref: str | opb.DatasetRef | None = None,
        metric: str = "",
        num_threads: int = 0,
        include_results: bool = False,
        input_keys: Sequence[str] = (),
        timeout: float | None = None,
    ) -> Iterator[opb.EvaluationEvent]:
        """Evaluate: a registered version, or a `spec` with its saved `state_json`, over
        `dataset` rows or a `dataset_ref` on the server: progress events, then the report.

            report = list(opt.evaluate("tickets", "1.1.0", dataset=rows))[-1].report
        """
        request = opb.EvaluateRequest(
            program=program,
            version=version,
            state_json=state_json,
            dataset=msg.examples(dataset, input_keys),
            metric=metric,
            num_threads=num_threads,
            include_results=include_results,
        )
        if spec is not None:
            request.spec.CopyFrom(spec)
        if lm is not None:
            request.lm.CopyFrom(lm)
        if dataset_ref:
            request.dataset_ref.CopyFrom(msg.dataset_ref(dataset_ref, input_keys))
        return self._stream(self.stub.Evaluate, request, opb.EvaluationEvent, timeout)

    @rpc("CompareVersions")
    def compare_versions(
        self,
        program: str,
        a: str,
        b: str,
        *,
        dataset: Iterable[Row | pb.Example] = (),
        dataset_ref: str | opb.DatasetRef | None = None,
        metric: str = "",
        input_keys: Sequence[str] = (),
        timeout: float | None = None,
    ) -> opb.VersionComparison:
        """CompareVersions: both versions on the same examples, with a paired test. It runs
        both programs, so it has no deadline unless `timeout` sets one.

        opt.compare_versions("tickets", "1.0.0", "@champion", dataset=rows).verdict
        """
        request = opb.CompareVersionsRequest(
            program=program, a=a, b=b, dataset=msg.examples(dataset, input_keys), metric=metric
        )
        if dataset_ref:
            request.dataset_ref.CopyFrom(msg.dataset_ref(dataset_ref, input_keys))
        return self._call(self.stub.CompareVersions, request, opb.VersionComparison, timeout)

    # ------------------------------------------------------------------ log

    @rpc("ReadLog")
    def read_log(
        self,
        after: int = 0,
        limit: int = 100,
        stream_prefix: str = "",
        *,
        types: Sequence[str] = (),
        actor: str = "",
        since: datetime | Timestamp | None = None,
        until: datetime | Timestamp | None = None,
    ) -> opb.ReadLogResponse:
        """ReadLog: up to `limit` events after `after` that pass the filters (event `types`
        short or full, `actor`, recorded time `since`..`until`, both inclusive). Read on
        from `scanned_to`; a filtered page may hold fewer than `limit` events before the end.

            page = opt.read_log(0, 100, types=["RoutesSet", "RolledBack"])
            more = opt.read_log(page.scanned_to, 100, types=["RoutesSet", "RolledBack"])
        """
        request = opb.ReadLogRequest(
            after=after, limit=limit, stream_prefix=stream_prefix, types=list(types), actor=actor
        )
        if since is not None:
            request.since.CopyFrom(msg.timestamp(since))
        if until is not None:
            request.until.CopyFrom(msg.timestamp(until))
        return self._unary(self.stub.ReadLog, request, opb.ReadLogResponse)

    @rpc("SubscribeLog")
    def subscribe_log(
        self,
        after: int = 0,
        stream_prefix: str = "",
        *,
        types: Sequence[str] = (),
        actor: str = "",
        since: datetime | Timestamp | None = None,
        until: datetime | Timestamp | None = None,
        timeout: float | None = None,
    ) -> Iterator[pb.Event]:
        """SubscribeLog: every event after `after` that passes the filters (as read_log's),
        then live ones, no gap, no duplicate; it ends only when the caller stops reading.

            for event in opt.subscribe_log(stream_prefix="deployment-"): print(event.type)
        """
        request = opb.SubscribeLogRequest(
            after=after, stream_prefix=stream_prefix, types=list(types), actor=actor
        )
        if since is not None:
            request.since.CopyFrom(msg.timestamp(since))
        if until is not None:
            request.until.CopyFrom(msg.timestamp(until))
        return self._stream(self.stub.SubscribeLog, request, pb.Event, timeout)

    @rpc("VerifyLog")
    def verify_log(self) -> opb.VerifyLogResponse:
        """VerifyLog: the optimizer walks the hash chain (with its chain key).

        result = opt.verify_log(); result.ok, result.checked, result.first_broken_position
        """
        return self._unary(self.stub.VerifyLog, opb.VerifyLogRequest(), opb.VerifyLogResponse)
