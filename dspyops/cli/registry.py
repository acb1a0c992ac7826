"""`dspyops registry programs|versions|version|set-status|set-alias|import|export`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from dspyops.cli.command import (
    json_option,
    lm_config,
    lm_options,
    module_option,
    read_spec,
    rpc_command,
    spec_option,
)
from dspyops.cli.session import Session
from dspyops.client.messages import STATUSES
from dspyops.render.console import console, print_json
from dspyops.render.registry import programs_table, status_name, version_lines, versions_table


@click.group()
def registry() -> None:
    """The program registry: programs, versions, statuses, aliases, import and export."""


@rpc_command(registry, "programs", "Optimizer.ListPrograms")
@json_option
@click.pass_obj
def programs(session: Session, as_json: bool) -> int:
    """list registered programs."""
    with session.optimizer() as opt:
        listed = opt.list_programs().programs
    if as_json:
        for program in listed:
            print_json(program)
    else:
        console.print(programs_table(listed))
    return 0


@rpc_command(registry, "versions", "Optimizer.ListVersions")
@click.argument("program")
@json_option
@click.pass_obj
def versions(session: Session, program: str, as_json: bool) -> int:
    """list a program's versions."""
    with session.optimizer() as opt:
        listed = opt.list_versions(program).versions
    if as_json:
        for version in listed:
            print_json(version)
    else:
        console.print(versions_table(program, listed))
    return 0


@rpc_command(registry, "version", "Optimizer.GetVersion")
@click.argument("program")
@click.argument("version")
@json_option
@click.pass_obj
def version(session: Session, program: str, version: str, as_json: bool) -> int:
    """one version (semver or @alias): spec, LM, artifact, lineage."""
    with session.optimizer() as opt:
        found = opt.get_version(program, version)
    if as_json:
        print_json(found)
    else:
        for line in version_lines(found):
            console.print(line, markup=False, highlight=False)  # a signature's list[str] is no markup
    return 0


@rpc_command(registry, "set-status", "Optimizer.SetVersionStatus", changes=True)
@click.argument("program")
@click.argument("version")
@click.option("--status", default="production", type=click.Choice(sorted(STATUSES)), show_default=True)
@click.option("--reason", default="", help="why, for the log")
@json_option
@click.pass_obj
def set_status(session: Session, program: str, version: str, status: str, reason: str, as_json: bool) -> int:
    """set a version's status (default: production, which deprecates the previous one)."""
    with session.optimizer() as opt:
        changed = opt.set_version_status(program, version, status, reason, request_id=session.request_id)
    if as_json:
        print_json(changed)
    else:
        console.print(f"{changed.program} {changed.version} is now {status_name(changed.status)}")
    return 0


@rpc_command(registry, "set-alias", "Optimizer.SetAlias", changes=True)
@click.argument("program")
@click.argument("alias")
@click.argument("version")
@json_option
@click.pass_obj
def set_alias(session: Session, program: str, alias: str, version: str, as_json: bool) -> int:
    """point an alias such as @champion at a version."""
    with session.optimizer() as opt:
        info = opt.set_alias(program, alias, version, request_id=session.request_id)
    if as_json:
        print_json(info)
    else:
        name = alias.removeprefix("@")
        console.print(f"{info.program} @{name} -> {info.aliases[name]}")
    return 0


@rpc_command(registry, "import", "Optimizer.ImportProgram", changes=True)
@click.argument("program")
@click.argument("state", type=click.Path(exists=True, dir_okay=False))
@click.option("--signature", default="", help="the saved predictor's signature (or --spec)")
@spec_option
@module_option
@click.option("--instructions", default="", help="the signature's instructions")
@lm_options
@json_option
@click.pass_obj
def import_(
    session: Session,
    program: str,
    state: str,
    signature: str,
    spec_file: str,
    module: str,
    instructions: str,
    connection: str,
    model: str,
    api_base: str,
    api_key_env: str,
    as_json: bool,
) -> int:
    """register a state saved by plain DSPy (program.save('x.json'))."""
    with session.optimizer() as opt:
        imported = opt.import_program(
            program,
            signature,
            Path(state).read_bytes(),
            module=module,
            instructions=instructions,
            lm=lm_config(connection, model, api_base, api_key_env),
            request_id=session.request_id,
            spec=read_spec(spec_file, signature, "import"),
        )
    if as_json:
        print_json(imported)
    else:
        console.print(
            f"imported {imported.program} {imported.version} (artifact {imported.artifact_digest[:12]})"
        )
    return 0


@rpc_command(registry, "export", "Optimizer.ExportVersion")
@click.argument("program")
@click.argument("version")
@click.option("--out", default="", help="write the JSON here (default: stdout)")
@json_option
@click.pass_obj
def export(session: Session, program: str, version: str, out: str, as_json: bool) -> int:
    """a version's state as JSON that plain DSPy loads with program.load()."""
    with session.optimizer() as opt:
        exported = opt.export_version(program, version)
    if as_json:
        print_json(exported)
    elif out:
        Path(out).write_bytes(exported.state_json)
        console.print(
            f"wrote {out}: dspy.{exported.spec.module}({exported.spec.signature!r}).load(path) reads it"
        )
    else:
        sys.stdout.write(exported.state_json.decode("utf-8") + "\n")
    return 0
