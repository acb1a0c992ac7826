"""Server reflection, both protocol versions: grpc.reflection.v1 and v1alpha.

grpcio-reflection ships only v1alpha, and clients that speak only v1 (newer grpcurl,
Postman, grpcui, ...) get UNIMPLEMENTED from a v1alpha-only server. The two protocols are
the same messages with the same field numbers in different packages, so the v1 service is
v1alpha's servicer behind v1's method name, with v1alpha's (de)serializers.

For v1's own descriptor to be resolvable through reflection (a v1 client bootstraps from
it), the default descriptor pool gets `grpc/reflection/v1/reflection.proto`, built from
v1alpha's file: same messages, v1's package and options. Nothing else ships it to Python.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import FileDescriptor
from grpc_reflection.v1alpha import reflection as v1alpha
from grpc_reflection.v1alpha import reflection_pb2 as v1alpha_pb2

V1_FILE = "grpc/reflection/v1/reflection.proto"
V1_PACKAGE = "grpc.reflection.v1"
V1_SERVICE = f"{V1_PACKAGE}.ServerReflection"
V1ALPHA_SERVICE: str = v1alpha.SERVICE_NAME
_ALPHA_PREFIX = f".{v1alpha_pb2.DESCRIPTOR.package}."
_V1_PREFIX = f".{V1_PACKAGE}."


def v1_file() -> FileDescriptor:
    """v1's file in the default pool (added on first use): v1alpha's messages and service
    with every name moved to the grpc.reflection.v1 package, and v1's file options."""
    pool = descriptor_pool.Default()
    try:
        return pool.FindFileByName(V1_FILE)
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    v1alpha_pb2.DESCRIPTOR.CopyToProto(proto)
    proto.name = V1_FILE
    proto.package = V1_PACKAGE
    for message in proto.message_type:
        for field in message.field:
            if field.type_name.startswith(_ALPHA_PREFIX):
                field.type_name = _V1_PREFIX + field.type_name.removeprefix(_ALPHA_PREFIX)
    for service in proto.service:
        for method in service.method:
            method.input_type = _V1_PREFIX + method.input_type.removeprefix(_ALPHA_PREFIX)
            method.output_type = _V1_PREFIX + method.output_type.removeprefix(_ALPHA_PREFIX)
    proto.options.Clear()  # v1's options, as its upstream .proto declares them
    proto.options.go_package = "google.golang.org/grpc/reflection/grpc_reflection_v1"
    proto.options.java_multiple_files = True
    proto.options.java_package = "io.grpc.reflection.v1"
    proto.options.java_outer_classname = "ServerReflectionProto"
    return pool.AddSerializedFile(proto.SerializeToString())


def enable(server: grpc.aio.Server, service_names: Iterable[str]) -> None:
    """Register reflection v1 and v1alpha on `server`, listing `service_names` and both
    reflection services."""
    v1_file()
    names = (*service_names, V1_SERVICE, V1ALPHA_SERVICE)
    servicer = v1alpha.aio.ReflectionServicer(names)
    handlers = {
        "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
            servicer.ServerReflectionInfo,
            request_deserializer=v1alpha_pb2.ServerReflectionRequest.FromString,
            response_serializer=v1alpha_pb2.ServerReflectionResponse.SerializeToString,
        )
    }
    for service in (V1ALPHA_SERVICE, V1_SERVICE):
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
        server.add_registered_method_handlers(service, handlers)
