"""The wire protocol of PYNQ.remote (pynq 4.0's gRPC board API), declared here as data.

pynq's host-side client (``pynq.pl_server.remote_device``) talks to a board on TCP port 7967 with
four gRPC services. What a server has to match is only the protocol: the proto packages, service
and method names, streaming modes, and each message's field names, numbers and types. Those facts
are tabulated below (read off pynq 4.0.0's published service definitions) and turned into protobuf
message classes at import time in a private descriptor pool, so the board emulator needs neither
pynq (which pins numpy<2) nor generated stubs: only ``protobuf`` and ``grpcio``.

The table is checked against pynq's own descriptors by tests/test_emulator.py when a pynq
environment is present.
"""
from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PYNQ_PORT = 7967

_T = descriptor_pb2.FieldDescriptorProto
_TYPES = {"string": _T.TYPE_STRING, "bytes": _T.TYPE_BYTES, "bool": _T.TYPE_BOOL, "int32": _T.TYPE_INT32,
          "uint32": _T.TYPE_UINT32, "uint64": _T.TYPE_UINT64}

# file -> (proto package, {message: [(field, number, type)]}, {service: {method: (request, response,
# client streaming, server streaming)}}); a type ending in "?" is a proto3 `optional` field
PROTOCOL = {
    "remote_device.proto": ("remote_device", {
        "ReadFileRequest": [("file_path", 1, "string")],
        "ReadFileResponse": [("data", 1, "bytes")],
        "WriteFileRequest": [("file_path", 1, "string"), ("data", 2, "bytes")],
        "WriteFileResponse": [],
        "ExistsFileRequest": [("file_path", 1, "string")],
        "ExistsFileResponse": [("exists", 1, "bool")],
        "SetBitstreamAttrsRequest": [("binfile_name", 1, "string"), ("partial", 2, "bool")],
        "SetBitstreamAttrsResponse": [("status", 1, "bool")],
        "ShutdownRequest": [],
        "ShutdownResponse": [("status", 1, "bool")],
        "SetPlClkRequest": [("i", 1, "int32"), ("div0", 2, "int32"), ("div1", 3, "int32"), ("clk_mhz", 4, "int32")],
        "SetPlClkResponse": [("status", 1, "bool")],
        "DownloadRequest": [("buffer", 1, "bytes")],
        "DownloadResponse": [("status", 1, "bool")],
    }, {"RemoteDevice": {
        "set_bitstream_attrs": ("SetBitstreamAttrsRequest", "SetBitstreamAttrsResponse", False, False),
        "download": ("DownloadRequest", "DownloadResponse", True, False),
        "set_pl_clk": ("SetPlClkRequest", "SetPlClkResponse", False, False),
        "shutdown": ("ShutdownRequest", "ShutdownResponse", False, False),
        "readfile": ("ReadFileRequest", "ReadFileResponse", False, True),
        "writefile": ("WriteFileRequest", "WriteFileResponse", True, False),
        "existsfile": ("ExistsFileRequest", "ExistsFileResponse", False, False),
    }}),
    "mmio.proto": ("mmio", {
        "GetMmioRequest": [("base_addr", 1, "uint64"), ("length", 2, "uint64")],
        "GetMmioResponse": [("status", 1, "bool"), ("msg", 2, "string?"), ("mmio_id", 3, "string?")],
        "ReadRequest": [("mmio_id", 1, "string"), ("length", 2, "uint64"), ("offset", 3, "uint64"),
                        ("word_order", 4, "string")],
        "ReadResponse": [("status", 1, "bool"), ("msg", 2, "string?"), ("data", 3, "uint32?")],
        "WriteRequest": [("mmio_id", 1, "string"), ("offset", 2, "uint64"), ("data", 3, "bytes")],
        "WriteResponse": [("status", 1, "bool"), ("msg", 2, "string?")],
    }, {"Mmio": {
        "get_mmio": ("GetMmioRequest", "GetMmioResponse", False, False),
        "read": ("ReadRequest", "ReadResponse", False, False),
        "write": ("WriteRequest", "WriteResponse", False, False),
    }}),
    "buffer.proto": ("buffer", {
        "CacheableRequest": [("buffer_id", 1, "string")],
        "CacheableResponse": [("msg", 2, "string?"), ("cacheable", 3, "bool?")],
        "AddressRequest": [("buffer_id", 1, "string")],
        "AddressResponse": [("msg", 2, "string?"), ("address", 3, "uint64?")],
        "InvalidateRequest": [("buffer_id", 1, "string")],
        "InvalidateResponse": [("msg", 2, "string?")],
        "FlushRequest": [("buffer_id", 1, "string")],
        "FlushResponse": [("msg", 2, "string?")],
        "AllocateRequest": [("size", 1, "int32"), ("dtype", 2, "string"), ("cacheable", 3, "bool")],
        "AllocateResponse": [("msg", 2, "string?"), ("buffer_id", 3, "string?")],
        "BufferWriteRequest": [("buffer_id", 1, "string"), ("data", 2, "bytes"), ("start", 3, "int32"),
                               ("end", 4, "int32")],
        "BufferWriteResponse": [("msg", 2, "string?")],
        "BufferReadRequest": [("buffer_id", 1, "string"), ("start", 2, "int32"), ("end", 3, "int32")],
        "BufferReadResponse": [("msg", 2, "string?"), ("data", 3, "bytes?")],
        "FreeBufferRequest": [("buffer_id", 1, "string")],
        "FreeBufferResponse": [("msg", 2, "string?")],
    }, {"RemoteBuffer": {
        "allocate": ("AllocateRequest", "AllocateResponse", False, False),
        "write": ("BufferWriteRequest", "BufferWriteResponse", True, False),
        "read": ("BufferReadRequest", "BufferReadResponse", False, True),
        "freebuffer": ("FreeBufferRequest", "FreeBufferResponse", False, False),
        "flush": ("FlushRequest", "FlushResponse", False, False),
        "invalidate": ("InvalidateRequest", "InvalidateResponse", False, False),
        "physical_address": ("AddressRequest", "AddressResponse", False, False),
        "virtual_address": ("AddressRequest", "AddressResponse", False, False),
        "cacheable": ("CacheableRequest", "CacheableResponse", False, False),
    }}),
    "gpio.proto": ("gpio", {
        "GetGpioRequest": [("index", 1, "int32"), ("direction", 2, "string")],
        "GetGpioResponse": [("message", 2, "string?"), ("gpio_id", 3, "string?")],
        "GpioReadRequest": [("gpio_id", 1, "string")],
        "GpioReadResponse": [("message", 2, "string?"), ("value", 3, "int32?")],
        "GpioWriteRequest": [("gpio_id", 1, "string"), ("value", 2, "int32")],
        "GpioWriteResponse": [],
        "GpioUnexportRequest": [("gpio_id", 1, "string")],
        "GpioUnexportResponse": [],
        "GpioIsExportedRequest": [("gpio_id", 1, "string")],
        "GpioIsExportedResponse": [("is_exported", 3, "bool?")],
        "GetGpioBasePathRequest": [("target_label", 1, "string?")],
        "GetGpioBasePathResponse": [("base_path", 3, "string?")],
        "GetGpioNPinsRequest": [("target_label", 1, "string?")],
        "GetGpioNPinsResponse": [("npins", 1, "int32?")],
    }, {"Gpio": {
        "get_gpio": ("GetGpioRequest", "GetGpioResponse", False, False),
        "read": ("GpioReadRequest", "GpioReadResponse", False, False),
        "write": ("GpioWriteRequest", "GpioWriteResponse", False, False),
        "unexport": ("GpioUnexportRequest", "GpioUnexportResponse", False, False),
        "is_exported": ("GpioIsExportedRequest", "GpioIsExportedResponse", False, False),
        "get_gpio_base_path": ("GetGpioBasePathRequest", "GetGpioBasePathResponse", False, False),
        "get_gpio_npins": ("GetGpioNPinsRequest", "GetGpioNPinsResponse", False, False),
    }}),
}


def _build():
    pool = descriptor_pool.DescriptorPool()
    classes = {}
    for fname, (package, messages, services) in PROTOCOL.items():
        fd = descriptor_pb2.FileDescriptorProto(name=fname, package=package, syntax="proto3")
        for mname, fields in messages.items():
            m = fd.message_type.add(name=mname)
            for field, number, typ in fields:
                f = m.field.add(name=field, number=number, type=_TYPES[typ.rstrip("?")], label=_T.LABEL_OPTIONAL,
                                json_name=field)
                if typ.endswith("?"):  # proto3 `optional`: explicit presence, a synthetic oneof
                    f.proto3_optional = True
                    f.oneof_index = len(m.oneof_decl)
                    m.oneof_decl.add(name=f"_{field}")
        for sname, methods in services.items():
            s = fd.service.add(name=sname)
            for meth, (req, resp, cs, ss) in methods.items():
                s.method.add(name=meth, input_type=f".{package}.{req}", output_type=f".{package}.{resp}",
                             client_streaming=cs, server_streaming=ss)
        pool.Add(fd)
        for mname in messages:
            classes[f"{package}.{mname}"] = message_factory.GetMessageClass(
                pool.FindMessageTypeByName(f"{package}.{mname}"))
    return pool, classes


POOL, MESSAGES = _build()


def message(full_name: str):
    """The message class ``package.Message`` (e.g. ``mmio.ReadRequest``)."""
    return MESSAGES[full_name]


def services():
    """[(full service name, {method: (request class, response class, client streaming, server streaming)})]."""
    out = []
    for _fname, (package, _messages, svcs) in PROTOCOL.items():
        for sname, methods in svcs.items():
            out.append((f"{package}.{sname}", {m: (MESSAGES[f"{package}.{req}"], MESSAGES[f"{package}.{resp}"], cs, ss)
                                               for m, (req, resp, cs, ss) in methods.items()}))
    return out


__all__ = ["PROTOCOL", "PYNQ_PORT", "POOL", "MESSAGES", "message", "services"]
