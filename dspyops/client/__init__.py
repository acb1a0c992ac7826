"""The Python client API: one method per RPC, plain arguments in, protobuf messages out.

The CLI is a thin face over these two classes; use them directly from notebooks and scripts:

    from dspyops.client import GatewayClient, OptimizerClient

    with OptimizerClient("127.0.0.1:50051") as opt:
        for event in opt.start_optimization("tickets", "text -> label", trainset=rows,
                                            optimizer="BootstrapFewShot", val_fraction=0.3):
            print(event)

Unary methods return the response message as it is; streaming methods return the iterator
of messages. Every request field is a keyword argument (rows for examples, dicts for routes
and optimizer parameters, names for enums, ints or datetimes for points of the log; the
message types where no friendlier form exists). Request ids and retries: see `channel`.

This module is the package's public face (what README and users import); the code lives in
`channel` (channel, retries), `messages` (friendly forms), `optimizer` and `gateway`.
"""

from dspyops.client.channel import new_request_id
from dspyops.client.gateway import GatewayClient
from dspyops.client.messages import examples
from dspyops.client.optimizer import OptimizerClient

__all__ = ["GatewayClient", "OptimizerClient", "examples", "new_request_id"]
