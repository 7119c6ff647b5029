"""Request bodies into columns, and answers into bytes: V2 tensors (JSON and Triton's binary
extension), `/predict` records and splits, and MLflow's `/invocations` bodies. Pure functions.

Every parser returns `(columns, n)`: a dict from input name to a list or 1-D numpy array of `n`
values, in the signature's column order. A body that does not parse raises `BadRequest` (HTTP 400);
one that parses but breaks the schema raises `InvalidInput` (422) naming the field.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from mloop.errors import InvalidInput, MloopError

Columns = dict[str, Any]


class BadRequest(MloopError):
    """Raised when a request body cannot be parsed at all (bad JSON, broken binary framing)."""

    exit_code = 2
    http_status = 400
    code = "bad_request"


class PayloadTooLarge(MloopError):
    """Raised when a request body is larger than the server's limit."""

    exit_code = 2
    http_status = 413
    code = "payload_too_large"


# V2 datatype -> numpy dtype (little-endian, as the binary extension lays bytes out).
V2_DTYPES: dict[str, np.dtype | None] = {
    "BOOL": np.dtype(bool), "UINT8": np.dtype("<u1"), "UINT16": np.dtype("<u2"), "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"), "INT8": np.dtype("<i1"), "INT16": np.dtype("<i2"), "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"), "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"),
    "BYTES": None,
}


def v2_datatype(dtype: Any) -> str:
    """The V2 datatype naming a numpy / pandas / signature dtype (strings and categories are BYTES)."""
    text = str(dtype).lower()
    table = {"bool": "BOOL", "boolean": "BOOL", "uint8": "UINT8", "uint16": "UINT16", "uint32": "UINT32",
             "uint64": "UINT64", "int8": "INT8", "int16": "INT16", "int32": "INT32", "int64": "INT64",
             "float16": "FP16", "float32": "FP32", "float64": "FP64", "float": "FP64", "double": "FP64",
             "int": "INT64", "integer": "INT64", "long": "INT64"}
    return table.get(text.removesuffix("[pyarrow]"), "BYTES")


def loads(body: bytes) -> Any:
    """Parse JSON, a parse failure being a 400 that says where."""
    if not body:
        raise BadRequest("the request body is empty; send JSON")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None


# -- V2 -----------------------------------------------------------------------------------------
@dataclass
class InferRequest:
    """A parsed V2 infer request: tensors by name plus what the caller asked back."""

    id: str | None
    parameters: dict
    inputs: dict[str, np.ndarray]  # name -> array shaped as the tensor's shape
    outputs: list[dict] | None  # requested outputs, None = all
    binary_output: bool  # request-level `binary_data_output`
    input_order: list[str] = field(default_factory=list)


def _shape(tensor: dict, name: str) -> list[int]:
    shape = tensor.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in shape):
        raise InvalidInput(f"input {name!r}: 'shape' must be a list of non-negative integers, got {shape!r}")
    return shape


def _count(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _json_tensor(data: Any, datatype: str, shape: list[int], name: str) -> np.ndarray:
    dtype = V2_DTYPES[datatype]
    if not isinstance(data, list):
        data = [data]
    try:
        if dtype is None:
            # Strings; numbers and bools are let through so one [n, k] BYTES tensor can carry a
            # mixed frame (the signature check coerces or refuses them per column).
            arr = np.asarray(data, dtype=object).reshape(-1)
            for value in arr:
                if not isinstance(value, str | int | float | bool) and value is not None:
                    raise InvalidInput(f"input {name!r} is BYTES: elements must be strings, got {value!r}")
        elif datatype == "BOOL":
            arr = np.asarray(data).reshape(-1)
            if arr.size and arr.dtype != bool:
                raise InvalidInput(f"input {name!r} is BOOL: elements must be true/false, got {arr.dtype}")
            arr = arr.astype(bool)
        else:
            arr = np.asarray(data)
            if arr.dtype == object or arr.dtype.kind in "USb":
                raise InvalidInput(f"input {name!r} is {datatype}: elements must be numbers")
            if dtype.kind in "iu" and arr.dtype.kind == "f":
                raise InvalidInput(f"input {name!r} is {datatype}: got non-integer numbers")
            arr = arr.astype(dtype, copy=False).reshape(-1)
    except InvalidInput:
        raise
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidInput(f"input {name!r}: data does not fit datatype {datatype}: {exc}") from None
    if arr.size != _count(shape):
        raise InvalidInput(f"input {name!r}: shape {shape} holds {_count(shape)} elements but data has {arr.size}")
    return arr.reshape(shape)


def _binary_tensor(buf: memoryview, datatype: str, shape: list[int], name: str) -> np.ndarray:
    dtype = V2_DTYPES[datatype]
    if dtype is None:
        out, pos, raw = [], 0, bytes(buf)
        while pos < len(raw):
            if pos + 4 > len(raw):
                raise BadRequest(f"input {name!r}: truncated BYTES element length")
            (size,) = struct.unpack_from("<I", raw, pos)
            pos += 4
            if pos + size > len(raw):
                raise BadRequest(f"input {name!r}: BYTES element overruns the tensor")
            try:
                out.append(raw[pos:pos + size].decode())
            except UnicodeDecodeError:
                raise InvalidInput(f"input {name!r}: BYTES element is not UTF-8 text") from None
            pos += size
        arr = np.asarray(out, dtype=object)
    else:
        if len(buf) % dtype.itemsize:
            raise BadRequest(f"input {name!r}: {len(buf)} bytes is not a whole number of {datatype} elements")
        arr = np.frombuffer(buf, dtype=dtype)
    if arr.size != _count(shape):
        raise InvalidInput(f"input {name!r}: shape {shape} holds {_count(shape)} elements but data has {arr.size}")
    return arr.reshape(shape)


def parse_infer(body: bytes, header_length: int | None = None) -> InferRequest:
    """Parse a V2 infer body; `header_length` is `Inference-Header-Content-Length` when present."""
    if header_length is not None:
        if header_length < 0 or header_length > len(body):
            raise BadRequest(f"Inference-Header-Content-Length {header_length} does not fit a "
                             f"{len(body)}-byte body")
        head, rest = body[:header_length], memoryview(body)[header_length:]
    else:
        head, rest = body, memoryview(b"")
    doc = loads(head)
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list) or not doc["inputs"]:
        raise InvalidInput("a V2 infer request is an object with a non-empty 'inputs' list")
    params = doc.get("parameters") or {}
    if not isinstance(params, dict):
        raise InvalidInput("'parameters' must be an object")
    inputs: dict[str, np.ndarray] = {}
    order: list[str] = []
    pos = 0
    for tensor in doc["inputs"]:
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            raise InvalidInput("every input tensor needs a string 'name'")
        name = tensor["name"]
        datatype = tensor.get("datatype")
        if datatype not in V2_DTYPES:
            raise InvalidInput(f"input {name!r}: unknown datatype {datatype!r}; one of {', '.join(V2_DTYPES)}")
        shape = _shape(tensor, name)
        tparams = tensor.get("parameters") or {}
        size = tparams.get("binary_data_size") if isinstance(tparams, dict) else None
        if size is not None:
            if not isinstance(size, int) or size < 0 or pos + size > len(rest):
                raise BadRequest(f"input {name!r}: binary_data_size {size!r} overruns the "
                                 f"{len(rest)} bytes after the JSON header")
            arr = _binary_tensor(rest[pos:pos + size], datatype, shape, name)
            pos += size
        elif "data" in tensor:
            arr = _json_tensor(tensor["data"], datatype, shape, name)
        else:
            raise InvalidInput(f"input {name!r} has neither 'data' nor parameters.binary_data_size")
        if name in inputs:
            raise InvalidInput(f"input {name!r} appears twice")
        inputs[name] = arr
        order.append(name)
    if pos != len(rest):
        raise BadRequest(f"{len(rest) - pos} bytes after the binary tensors belong to no input")
    outputs = doc.get("outputs")
    if outputs is not None and (not isinstance(outputs, list) or
                                not all(isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs)):
        raise InvalidInput("'outputs' must be a list of objects with a 'name'")
    rid = doc.get("id")
    return InferRequest(id=None if rid is None else str(rid), parameters=params, inputs=inputs,
                        outputs=outputs, binary_output=bool(params.get("binary_data_output", False)),
                        input_order=order)


def v2_columns(req: InferRequest, names: Sequence[str]) -> tuple[Columns, int]:
    """Named tensors (one per column, shape [n] or [n, 1]) or one [n, k] tensor -> columns."""
    tensors = req.inputs
    if len(tensors) == 1 and next(iter(tensors)) not in names:
        (tname, arr), = tensors.items()
        if arr.ndim != 2 or arr.shape[1] != len(names):
            raise InvalidInput(f"input {tname!r}: a single tensor must have shape [n, {len(names)}] "
                               f"(columns {', '.join(names)}), got {list(arr.shape)}")
        return {c: arr[:, i] for i, c in enumerate(names)}, arr.shape[0]
    unknown = [t for t in tensors if t not in names]
    if unknown:
        raise InvalidInput(f"unknown input {unknown[0]!r}; the model takes {', '.join(names)}")
    missing = [c for c in names if c not in tensors]
    if missing:
        raise InvalidInput(f"missing input {missing[0]!r}; the model takes {', '.join(names)}")
    cols: Columns = {}
    n = None
    for c in names:
        arr = tensors[c]
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 1:
            raise InvalidInput(f"input {c!r}: a column tensor must have shape [n] or [n, 1], got {list(arr.shape)}")
        if n is None:
            n = arr.shape[0]
        elif arr.shape[0] != n:
            raise InvalidInput(f"input {c!r} has {arr.shape[0]} rows but {names[0]!r} has {n}")
        cols[c] = arr
    return cols, n or 0


def _bytes_tensor(values: Sequence) -> bytes:
    parts = []
    for v in values:
        b = v if isinstance(v, bytes) else str(v).encode()
        parts.append(struct.pack("<I", len(b)))
        parts.append(b)
    return b"".join(parts)


def encode_infer(model_name: str, version: str | None, req_id: str | None,
                 outputs: list[tuple[str, str, np.ndarray]], binary: dict[str, bool]) -> tuple[bytes, int | None]:
    """Encode a V2 response; outputs are `(name, datatype, array)`; `binary[name]` asks for binary data.
    Returns `(body, header_length)`; header_length is None for plain JSON."""
    doc: dict[str, Any] = {"model_name": model_name}
    if version is not None:
        doc["model_version"] = version
    if req_id is not None:
        doc["id"] = req_id
    tensors, chunks = [], []
    for name, datatype, arr in outputs:
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(arr.shape)}
        if binary.get(name):
            if datatype == "BYTES":
                raw = _bytes_tensor(arr.reshape(-1).tolist())
            else:
                raw = np.ascontiguousarray(arr, dtype=V2_DTYPES[datatype]).tobytes()
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            entry["data"] = arr.reshape(-1).tolist()
        tensors.append(entry)
    doc["outputs"] = tensors
    head = orjson.dumps(doc)
    if not chunks:
        return head, None
    return head + b"".join(chunks), len(head)


# -- /predict and /invocations -------------------------------------------------------------------
def _records(rows: list, names: Sequence[str]) -> tuple[Columns, int]:
    if not rows:
        raise InvalidInput("no rows given")
    first = rows[0]
    if isinstance(first, dict):
        for i, r in enumerate(rows):
            if not isinstance(r, dict):
                raise InvalidInput(f"row {i} is not an object like row 0")
        seen = set().union(*(r.keys() for r in rows)) if len(rows) > 1 else first.keys()
        missing = [c for c in names if c not in seen]
        if missing:
            raise InvalidInput(f"missing column {missing[0]!r}; the model takes {', '.join(names)}")
        if len(rows) == 1:
            return {c: [first.get(c)] for c in names}, 1
        return {c: [r.get(c) for r in rows] for c in names}, len(rows)
    if isinstance(first, list):
        return _split(names, rows, None)
    raise InvalidInput("rows must be objects ({column: value}) or lists of values in column order")


def _split(names: Sequence[str], data: Any, columns: Any) -> tuple[Columns, int]:
    if not isinstance(data, list):
        raise InvalidInput("'data' must be a list of rows")
    if columns is None:
        columns = list(names)
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise InvalidInput("'columns' must be a list of column names")
    width = len(columns)
    for i, row in enumerate(data):
        if not isinstance(row, list) or len(row) != width:
            raise InvalidInput(f"row {i} of 'data' must be a list of {width} values (one per column)")
    missing = [c for c in names if c not in columns]
    if missing:
        raise InvalidInput(f"missing column {missing[0]!r}; the model takes {', '.join(names)}")
    idx = {c: i for i, c in enumerate(columns)}
    if not data:
        raise InvalidInput("no rows given")
    return {c: [row[idx[c]] for row in data] for c in names}, len(data)


def _columnar(doc: dict, names: Sequence[str]) -> tuple[Columns, int]:
    missing = [c for c in names if c not in doc]
    if missing:
        raise InvalidInput(f"missing column {missing[0]!r}; the model takes {', '.join(names)}")
    values = [doc[c] for c in names]
    if all(not isinstance(v, list | dict) for v in values):
        return {c: [doc[c]] for c in names}, 1
    n = None
    cols: Columns = {}
    for c, v in zip(names, values, strict=True):
        if not isinstance(v, list):
            raise InvalidInput(f"column {c!r} must be a list of values like the others")
        if n is None:
            n = len(v)
        elif len(v) != n:
            raise InvalidInput(f"column {c!r} has {len(v)} values but {names[0]!r} has {n}")
        cols[c] = v
    if not n:
        raise InvalidInput("no rows given")
    return cols, n


def _names_in(doc: Any) -> list[str]:
    """The column names a body carries (for an input resolver, which adds the rest)."""
    if isinstance(doc, dict):
        for key in ("dataframe_split", "dataframe_records", "inputs", "instances"):
            if key in doc:
                return _names_in(doc[key])
        if isinstance(doc.get("columns"), list):
            return [c for c in doc["columns"] if isinstance(c, str)]
        return [k for k in doc if isinstance(k, str)]
    if isinstance(doc, list) and doc and isinstance(doc[0], dict):
        return list(dict.fromkeys(k for r in doc if isinstance(r, dict) for k in r))
    raise InvalidInput("with an input resolver, send records or a split frame with column names")


def parse_predict(body: bytes, names: Sequence[str] | None) -> tuple[Columns, int]:
    """`/predict` and `/invocations` bodies -> columns.

    Accepts records `[{"col": v}]`, split `{"columns": [...], "data": [[...]]}`, MLflow's
    `{"dataframe_split": ...}`, `{"dataframe_records": [...]}`, `{"inputs": ...}` (columns dict or
    records), `{"instances": [...]}`, and one record `{"col": v, ...}`.
    """
    doc = loads(body)
    if names is None:
        names = _names_in(doc)
    if isinstance(doc, list):
        return _records(doc, names)
    if not isinstance(doc, dict):
        raise InvalidInput("the body must be a JSON object or a list of records")
    if "dataframe_split" in doc:
        split = doc["dataframe_split"]
        if not isinstance(split, dict):
            raise InvalidInput("'dataframe_split' must be an object with 'columns' and 'data'")
        return _split(names, split.get("data"), split.get("columns"))
    if "dataframe_records" in doc:
        rows = doc["dataframe_records"]
        if not isinstance(rows, list):
            raise InvalidInput("'dataframe_records' must be a list of records")
        return _records(rows, names)
    for key in ("inputs", "instances"):
        if key in doc:
            value = doc[key]
            if isinstance(value, dict):
                return _columnar(value, names)
            if isinstance(value, list):
                return _records(value, names)
            raise InvalidInput(f"'{key}' must be a columns object or a list of records")
    if "data" in doc and ("columns" in doc or isinstance(doc.get("data"), list)) and "data" not in names:
        return _split(names, doc.get("data"), doc.get("columns"))
    return _columnar(doc, names)


def encode_predict(request_id: str, model: str, version: int | None, predictions: np.ndarray,
                   proba: np.ndarray | None, class_keys: Sequence[str] | None) -> bytes:
    """The `/predict` answer: request id, model, version, predictions and `{class: p}` rows."""
    doc: dict[str, Any] = {"request_id": request_id, "model": model, "version": version,
                           "predictions": predictions.tolist()}
    if proba is not None and class_keys is not None:
        doc["probabilities"] = [dict(zip(class_keys, row, strict=True)) for row in proba.tolist()]
    return orjson.dumps(doc)


def error_body(message: str, code: str | None = None) -> bytes:
    """`{"error": message}` for /v2 routes (code None), else `{"error": code, "message": message}`."""
    if code is None:
        return orjson.dumps({"error": message})
    return orjson.dumps({"error": code, "message": message})
