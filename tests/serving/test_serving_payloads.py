"""Payload parsing and encoding (pure functions): V2 JSON and binary tensors, /predict bodies."""

from __future__ import annotations

import struct

import numpy as np
import orjson
import pytest

from mloop.errors import InvalidInput
from mloop.serving.payloads import (
    BadRequest,
    encode_infer,
    encode_predict,
    parse_infer,
    parse_predict,
    v2_columns,
)
from mloop.serving.traffic import bucket, to_challenger

NAMES = ["a", "b", "s"]


def v2_body(inputs, **extra) -> bytes:
    return orjson.dumps({"inputs": inputs, **extra})


def test_v2_json_named_columns_flat_and_nested():
    body = v2_body([
        {"name": "a", "shape": [2], "datatype": "INT64", "data": [1, 2]},
        {"name": "b", "shape": [2, 1], "datatype": "FP32", "data": [[0.5], [1.5]]},
        {"name": "s", "shape": [2], "datatype": "BYTES", "data": ["x", "y"]},
    ], id="42")
    req = parse_infer(body)
    assert req.id == "42"
    cols, n = v2_columns(req, NAMES)
    assert n == 2
    assert cols["a"].tolist() == [1, 2] and cols["a"].dtype == np.int64
    assert cols["b"].tolist() == [0.5, 1.5] and cols["b"].dtype == np.float32
    assert cols["s"].tolist() == ["x", "y"]


def test_v2_single_matrix_tensor_maps_to_signature_order():
    req = parse_infer(v2_body([{"name": "input", "shape": [2, 3], "datatype": "FP64",
                                "data": [1, 2, 3, 4, 5, 6]}]))
    cols, n = v2_columns(req, NAMES)
    assert n == 2 and cols["a"].tolist() == [1, 4] and cols["s"].tolist() == [3, 6]


@pytest.mark.parametrize("dtype,np_dtype", [("BOOL", bool), ("UINT8", "<u1"), ("INT16", "<i2"), ("INT32", "<i4"),
                                            ("INT64", "<i8"), ("FP16", "<f2"), ("FP32", "<f4"), ("FP64", "<f8")])
def test_v2_binary_tensors_of_every_fixed_width_type(dtype, np_dtype):
    arr = np.array([1, 0, 1], dtype=np_dtype)
    raw = arr.tobytes()
    head = orjson.dumps({"inputs": [{"name": "a", "shape": [3], "datatype": dtype,
                                     "parameters": {"binary_data_size": len(raw)}}]})
    req = parse_infer(head + raw, len(head))
    assert req.inputs["a"].tolist() == arr.tolist() and req.inputs["a"].dtype == np.dtype(np_dtype)


def test_v2_binary_bytes_tensor():
    raw = b"".join(struct.pack("<I", len(s)) + s for s in [b"basic", b"", "pr\u00f6".encode()])
    head = orjson.dumps({"inputs": [{"name": "s", "shape": [3], "datatype": "BYTES",
                                     "parameters": {"binary_data_size": len(raw)}}]})
    assert parse_infer(head + raw, len(head)).inputs["s"].tolist() == ["basic", "", "pr\u00f6"]


@pytest.mark.parametrize("body,hl,exc,needle", [
    (b"{not json", None, BadRequest, "not valid JSON"),
    (b"", None, BadRequest, "empty"),
    (b'{"inputs": []}', None, InvalidInput, "non-empty 'inputs'"),
    (b'{"inputs": [{"name": "a", "shape": [2], "datatype": "FP64", "data": [1]}]}', None, InvalidInput, "holds 2"),
    (b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": ["x"]}]}', None, InvalidInput, "numbers"),
    (b'{"inputs": [{"name": "a", "shape": [1], "datatype": "INT64", "data": [1.5]}]}', None, InvalidInput,
     "non-integer"),
    (b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FLOAT", "data": [1]}]}', None, InvalidInput,
     "unknown datatype"),
    (b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "parameters": {"binary_data_size": 8}}]}', 500,
     BadRequest, "does not fit"),
])
def test_v2_bad_bodies(body, hl, exc, needle):
    with pytest.raises(exc, match=needle):
        parse_infer(body, hl)


def test_v2_columns_names_missing_and_unknown_inputs():
    req = parse_infer(v2_body([{"name": "a", "shape": [1], "datatype": "FP64", "data": [1]},
                               {"name": "b", "shape": [1], "datatype": "FP64", "data": [1]}]))
    with pytest.raises(InvalidInput, match="missing input 's'"):
        v2_columns(req, NAMES)
    req = parse_infer(v2_body([{"name": "zz", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}]))
    with pytest.raises(InvalidInput, match=r"shape \[n, 3\]"):
        v2_columns(req, NAMES)


def test_encode_infer_json_and_binary_round_trip():
    pred = np.array([1, 0], dtype="int64")
    proba = np.array([[0.2, 0.8], [0.9, 0.1]])
    body, hl = encode_infer("m", "3", "7", [("prediction", "INT64", pred), ("probabilities", "FP64", proba)], {})
    assert hl is None
    doc = orjson.loads(body)
    assert doc["model_name"] == "m" and doc["model_version"] == "3" and doc["id"] == "7"
    assert doc["outputs"][1] == {"name": "probabilities", "datatype": "FP64", "shape": [2, 2],
                                 "data": [0.2, 0.8, 0.9, 0.1]}
    body, hl = encode_infer("m", "3", None, [("prediction", "INT64", pred), ("probabilities", "FP64", proba)],
                            {"probabilities": True})
    head = orjson.loads(body[:hl])
    size = head["outputs"][1]["parameters"]["binary_data_size"]
    assert size == 32 and np.frombuffer(body[hl:], "<f8").reshape(2, 2).tolist() == proba.tolist()
    assert head["outputs"][0]["data"] == [1, 0]


@pytest.mark.parametrize("doc", [
    [{"a": 1, "b": 2.0, "s": "x"}, {"a": 3, "b": 4.0, "s": "y"}],
    {"columns": ["s", "a", "b"], "data": [["x", 1, 2.0], ["y", 3, 4.0]]},
    {"dataframe_split": {"columns": ["a", "b", "s"], "data": [[1, 2.0, "x"], [3, 4.0, "y"]]}},
    {"dataframe_records": [{"a": 1, "b": 2.0, "s": "x"}, {"a": 3, "b": 4.0, "s": "y"}]},
    {"inputs": {"a": [1, 3], "b": [2.0, 4.0], "s": ["x", "y"]}},
    {"inputs": [{"a": 1, "b": 2.0, "s": "x"}, {"a": 3, "b": 4.0, "s": "y"}]},
    {"instances": [{"a": 1, "b": 2.0, "s": "x"}, {"a": 3, "b": 4.0, "s": "y"}]},
])
def test_predict_bodies_all_give_the_same_columns(doc):
    cols, n = parse_predict(orjson.dumps(doc), NAMES)
    assert n == 2
    assert {c: list(v) for c, v in cols.items()} == {"a": [1, 3], "b": [2.0, 4.0], "s": ["x", "y"]}


def test_predict_single_record_and_errors():
    cols, n = parse_predict(b'{"a": 1, "b": 2, "s": "x"}', NAMES)
    assert n == 1 and cols == {"a": [1], "b": [2], "s": ["x"]}
    with pytest.raises(InvalidInput, match="missing column 's'"):
        parse_predict(b'[{"a": 1, "b": 2}]', NAMES)
    with pytest.raises(InvalidInput, match="row 1"):
        parse_predict(b'{"columns": ["a", "b", "s"], "data": [[1, 2, "x"], [1, 2]]}', NAMES)
    with pytest.raises(BadRequest):
        parse_predict(b'[{"a": 1,', NAMES)


def test_encode_predict_probabilities_by_class():
    out = orjson.loads(encode_predict("r1", "churn", 2, np.array([1]), np.array([[0.25, 0.75]]), ["0", "1"]))
    assert out == {"request_id": "r1", "model": "churn", "version": 2, "predictions": [1],
                   "probabilities": [{"0": 0.25, "1": 0.75}]}


def test_traffic_bucket_is_blake3_mod_10000_and_sticky():
    from blake3 import blake3

    for key in ["user-1", "user-2", "x" * 100]:
        expected = int.from_bytes(blake3(key.encode()).digest()[:8], "little") % 10_000
        assert bucket(key) == expected
        assert to_challenger(key, 0.3) == (expected < 3000)
    assert not to_challenger("any", 0.0) and to_challenger("any", 1.0)
