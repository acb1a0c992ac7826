"""`dspyops registry ...` (ListPrograms, ListVersions, GetVersion, SetVersionStatus,
SetAlias, ImportProgram, ExportVersion) against real servers, grouped names and shortcuts."""

from __future__ import annotations

import json

import dspy
import pytest

from tests.support.cli_servers import SIG, Servers, cli, saved_state, servers

__all__ = ["cli", "servers"]  # the fixtures


def test_import_then_list_programs_and_versions(cli: Servers) -> None:
    (imported,) = cli.json("registry", "import", "q", str(saved_state(cli.tmp, 2)), "--signature", SIG)
    assert imported["program"] == "q" and imported["version"] == "1.0.0"
    code, out = cli.run("import", "q", str(saved_state(cli.tmp, 3)), "--signature", SIG)  # the shortcut
    assert code == 0 and "imported q 1.1.0" in out

    programs = {p["program"]: p for p in cli.json("registry", "programs")}
    assert programs["q"]["versions"] == ["1.0.0", "1.1.0"] and programs["p"]["production_version"] == "1.0.0"
    code, out = cli.run("registry", "versions", "q")
    assert code == 0 and "versions of q" in out and "1.1.0" in out and "import" in out
    assert [v["version"] for v in cli.json("versions", "q")] == ["1.0.0", "1.1.0"]


def test_get_version_by_semver_and_by_alias(cli: Servers) -> None:
    (found,) = cli.json("registry", "version", "p", "1.1.0")
    assert found["version"] == "1.1.0" and found["spec"]["signature"] == SIG
    code, out = cli.run("registry", "version", "p", "1.1.0")
    assert code == 0 and f"dspy.Predict({SIG!r})" in out and f"artifact {found['artifact_digest']}" in out
    code, out = cli.run("registry", "version", "p", "9.9.9")
    assert code == 1 and "NOT_FOUND" in out


def test_set_status_and_alias_grouped_and_as_shortcuts(cli: Servers) -> None:
    (staged,) = cli.json("registry", "set-status", "p", "1.1.0", "--status", "staging", "--reason", "try it")
    assert staged["status"] == "STAGING"
    code, out = cli.run("promote", "p", "1.2.0")  # the default status is production
    assert code == 0 and "p 1.2.0 is now production" in out
    (info,) = cli.json("registry", "set-alias", "p", "@champion", "1.2.0")
    assert info["aliases"]["champion"] == "1.2.0"
    code, out = cli.run("alias", "p", "challenger", "1.1.0")
    assert code == 0 and "p @challenger -> 1.1.0" in out
    (found,) = cli.json("registry", "version", "p", "@champion")
    assert found["version"] == "1.2.0" and found["status"] == "PRODUCTION"
    assert cli.json("promote", "p", "1.0.0", "--status", "archived")[0]["status"] == "ARCHIVED"
    with pytest.raises(SystemExit) as usage:  # a usage error, as argparse's were: exit 2
        cli.run("promote", "p", "1.0.0", "--status", "bogus")
    assert usage.value.code == 2
    assert "'bogus' is not one of" in cli.capsys.readouterr().err  # type: ignore[union-attr]


def test_export_writes_what_plain_dspy_loads(cli: Servers) -> None:
    out_file = cli.tmp / "exported.json"
    code, out = cli.run("registry", "export", "p", "1.1.0", "--out", str(out_file))
    assert code == 0 and f"wrote {out_file}" in out
    program = dspy.Predict(SIG)
    program.load(str(out_file))
    assert len(program.demos) == 2
    code, out = cli.run("export", "p", "1.1.0")  # to stdout
    assert code == 0 and json.loads(out) == json.loads(out_file.read_text())


def test_import_a_pipeline_state_plain_dspy_saved(cli: Servers) -> None:
    from google.protobuf import json_format

    from dspyops.programs.build import build_module
    from dspyops.programs.protos import spec_from_proto
    from dspyops.proto import events_pb2 as pb

    spec = {
        "module": "Pipeline",
        "pipeline": {
            "stages": [
                {
                    "name": "analyze",
                    "kind": "Predict",
                    "signature": "text -> topic",
                    "inputs": {"text": "input.text"},
                },
                {
                    "name": "answer",
                    "kind": "Predict",
                    "signature": "text, topic -> label",
                    "inputs": {"text": "input.text", "topic": "analyze.topic"},
                },
            ],
            "outputs": {"label": "answer.label"},
        },
    }
    spec_file = cli.tmp / "two-stage.json"
    spec_file.write_text(json.dumps(spec))
    program = build_module(spec_from_proto(json_format.Parse(spec_file.read_text(), pb.ProgramSpec())))
    program.answer.demos = [dspy.Example(text="charged twice", topic="billing", label="billing")]
    saved = cli.tmp / "two-stage-state.json"
    program.save(str(saved))  # what plain DSPy writes for the pipeline's module
    (imported,) = cli.json("registry", "import", "two-stage", str(saved), "--spec", str(spec_file))
    assert imported["version"] == "1.0.0"
    out_file = cli.tmp / "two-stage-export.json"
    assert cli.run("registry", "export", "two-stage", "1.0.0", "--out", str(out_file))[0] == 0
    assert json.loads(out_file.read_text())["answer"]["demos"][0]["label"] == "billing"
