"""The user code a version runs, so a gateway can refuse code that changed since registration.

A version that runs user code (a user module class, ReAct tools) records, per module, the
sha256 of its source file, and the installed distribution (name and version) that provides
the user module, when one does (``importlib.metadata.packages_distributions``). A gateway
recomputes the digests of the code it loads and compares them with the version's.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import sys
from dataclasses import dataclass, field

from dspyops.programs.allowlist import parse_ref
from dspyops.programs.spec import ProgramSpec
from dspyops.programs.usermodules import tool_refs


@dataclass(frozen=True)
class CodeIdentity:
    digests: dict[str, str] = field(default_factory=dict)  # module -> sha256 hex of its source file
    distribution: str = ""
    version: str = ""


def code_modules(spec: ProgramSpec) -> list[str]:
    """The modules of user code the spec names (its class, its tools), sorted."""
    names: set[str] = set()
    if spec.is_user_module:
        names.add(parse_ref(spec.module, "module", "class").module)
        names.update(parse_ref(ref, "init_args", "function").module for ref in tool_refs(spec.init_kwargs()))
    if spec.pipeline is not None:
        for stage in spec.pipeline.stages:
            names.update(parse_ref(tool, "tools", "function").module for tool in stage.tools)
    return sorted(names)


def source_digest(module_name: str) -> str:
    """sha256 of the (already imported) module's source file; "" when it has none."""
    module = sys.modules.get(module_name)
    path = getattr(module, "__file__", None)
    if not path:
        return ""
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def distribution_of(module_name: str) -> tuple[str, str]:
    top = module_name.partition(".")[0]
    dists = importlib.metadata.packages_distributions().get(top, [])
    if not dists:
        return "", ""
    name = sorted(dists)[0]
    try:
        return name, importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return name, ""


def _class_module(spec: ProgramSpec) -> str:
    """The module the user's class is defined in (it may be imported into the one named)."""
    ref = parse_ref(spec.module, "module", "class")
    cls = getattr(sys.modules.get(ref.module), ref.attribute, None)
    return str(getattr(cls, "__module__", "") or ref.module)


def code_identity(spec: ProgramSpec) -> CodeIdentity:
    """Of a spec whose program was built (so its modules are imported)."""
    modules = set(code_modules(spec))
    if spec.is_user_module:
        modules.add(_class_module(spec))
    digests = {name: digest for name in sorted(modules) if (digest := source_digest(name))}
    distribution, version = ("", "")
    if spec.is_user_module:
        distribution, version = distribution_of(parse_ref(spec.module, "module", "class").module)
    return CodeIdentity(digests, distribution, version)


__all__ = ["CodeIdentity", "code_identity", "code_modules", "distribution_of", "source_digest"]
