"""Every RPC of both services has bad-input rows (tests/optimizer/test_bad_input.py,
tests/gateway/test_bad_input.py) or an exemption: an RPC added to the contract without
either fails here, since this reads the service descriptors."""

from __future__ import annotations

from dspyops.proto import gateway_pb2 as gpb
from dspyops.proto import optimizer_pb2 as opb
from tests.gateway.test_bad_input import GATEWAY_CASES
from tests.gateway.test_evaluators_bad_input import EVALUATOR_CASES
from tests.optimizer.test_bad_input import OPTIMIZER_CASES

CASES = [*OPTIMIZER_CASES, *GATEWAY_CASES, *EVALUATOR_CASES]

# RPCs whose request has no fields: there is no input to get wrong.
EXEMPT: dict[str, str] = {
    "ListOptimizers": "ListOptimizersRequest has no fields",
    "ListPrograms": "ListProgramsRequest has no fields",
    "ListDeployments": "ListDeploymentsRequest has no fields",
    "VerifyLog": "VerifyLogRequest has no fields",
    "ListDeploymentStates": "ListDeploymentStatesRequest has no fields",
    "ListConnections": "ListConnectionsRequest has no fields (both services)",
    "ListCorpora": "ListCorporaRequest has no fields",
}


def all_rpcs() -> dict[str, int]:
    """Every RPC of both services -> the number of fields its request has."""
    methods = {}
    for module, service in ((opb, "Optimizer"), (gpb, "Gateway")):
        for method in module.DESCRIPTOR.services_by_name[service].methods:
            methods[method.name] = len(method.input_type.fields)
    return methods


def test_every_rpc_has_a_bad_input_row() -> None:
    rpcs = all_rpcs()
    covered = {case[1] for case in CASES}
    assert not covered - rpcs.keys(), f"rows name RPCs the services do not have: {covered - rpcs.keys()}"
    missing = rpcs.keys() - covered - EXEMPT.keys()
    assert not missing, f"RPCs with neither a bad-input row nor an exemption: {sorted(missing)}"
    assert not covered & EXEMPT.keys(), "an exempt RPC has rows: drop the exemption"
    # an exemption holds only while the request really takes nothing
    assert {name for name in EXEMPT if rpcs[name]} == set(), "an exempt RPC's request has fields now"
