"""protoc-gen-pyservice: typed async gRPC services, clients and validators from .proto files."""

__version__ = "0.1.0"
