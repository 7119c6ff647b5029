"""The ONNX fast path: convert a scikit-learn, XGBoost or LightGBM model with skl2onnx /
onnxmltools and serve it through onnxruntime, but only after checking on the input example and the
validation sample that labels are equal and |Δ probability| <= 1e-5. Any mismatch or unsupported
operator falls back to the native flavor with a log line saying why.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

TOLERANCE = 1e-5


class OnnxPredictor:
    """One onnxruntime session taking one [n, 1] tensor per input column."""

    def __init__(self, session: Any, columns: list[str], kinds: dict[str, str], classes: list) -> None:
        self.session = session
        self.columns = columns
        self.kinds = kinds  # column -> "float" | "int" | "str"
        self.classes = np.asarray(classes)
        outs = [o.name for o in session.get_outputs()]
        self._proba_name = next((o for o in outs if "prob" in o.lower()), outs[-1])

    def feed(self, df: Any) -> dict:
        return self.feed_columns({c: df[c].to_numpy() for c in self.columns})

    def feed_columns(self, columns: dict[str, np.ndarray]) -> dict:
        """The session's inputs from one array per column (what a frame's columns would give)."""
        feed = {}
        for c in self.columns:
            kind = self.kinds[c]
            col = columns[c]
            if kind == "float":
                arr = col.astype(np.float32)
            elif kind == "int":
                arr = col.astype(np.int64)
            else:
                arr = col.astype(str).astype(object)
            feed[c] = arr.reshape(-1, 1)
        return feed

    def predict(self, df: Any) -> tuple[np.ndarray, np.ndarray]:
        return self.predict_feed(self.feed(df))

    def predict_feed(self, feed: dict) -> tuple[np.ndarray, np.ndarray]:
        (proba,) = self.session.run([self._proba_name], feed)
        proba = np.asarray(proba, dtype="float64")
        return self.classes[proba.argmax(axis=1)], proba


def _kinds(df: Any) -> dict[str, str]:
    import pandas as pd

    out = {}
    for c in df.columns:
        dt = df[c].dtype
        if pd.api.types.is_bool_dtype(dt):
            out[c] = "int"
        elif pd.api.types.is_integer_dtype(dt):
            out[c] = "int"
        elif pd.api.types.is_float_dtype(dt):
            out[c] = "float"
        else:
            out[c] = "str"
    return out


def _convert(native: Any, sample: Any, kinds: dict[str, str]) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType

    types = {"float": FloatTensorType, "int": Int64TensorType, "str": StringTensorType}
    initial = [(c, types[kinds[c]]([None, 1])) for c in sample.columns]
    module = type(native).__module__.split(".")[0]
    final = native.steps[-1][1] if hasattr(native, "steps") else native
    fmodule = type(final).__module__.split(".")[0]
    if fmodule in ("xgboost", "lightgbm"):
        _register_boosters()
    options = {id(final): {"zipmap": False}}
    if module in ("xgboost", "lightgbm"):
        import onnxmltools

        fn = onnxmltools.convert_xgboost if module == "xgboost" else onnxmltools.convert_lightgbm
        onx = fn(native, initial_types=initial, target_opset=15)
    else:
        onx = convert_sklearn(native, initial_types=initial, options=options, target_opset={"": 15, "ai.onnx.ml": 3})
    return onx.SerializeToString()


def _register_boosters() -> None:
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes

    try:
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
        from xgboost import XGBClassifier

        update_registered_converter(XGBClassifier, "XGBoostXGBClassifier", calculate_linear_classifier_output_shapes,
                                    convert_xgboost, options={"nocl": [True, False], "zipmap": [True, False, "columns"]})
    except ImportError:
        pass
    try:
        from lightgbm import LGBMClassifier
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm

        update_registered_converter(LGBMClassifier, "LightGbmLGBMClassifier", calculate_linear_classifier_output_shapes,
                                    convert_lightgbm, options={"nocl": [True, False], "zipmap": [True, False, "columns"]})
    except ImportError:
        pass


def _samples(model: Any) -> list:
    """The input example and the validation sample (prepared frames) to check the conversion on."""
    from mloop.serving.served import input_example

    names = [i["name"] for i in (model.signature.inputs or [])]
    found = []
    ex = input_example(model, names)
    if ex is not None and len(ex):
        found.append(model.prepare(ex))
    digest = getattr(getattr(model, "version", None), "validation_data", None)
    if digest:
        import io

        import pyarrow.parquet as pq

        from mloop.artifacts import get_blob_store

        df = pq.read_table(io.BytesIO(get_blob_store().get(digest))).to_pandas()
        cols = [c for c in names if c in df.columns]
        if len(cols) == len(names):
            found.append(model.prepare(df[names].head(5000)))
    return found


def try_onnx(model: Any, uri: str) -> OnnxPredictor | None:
    """An ONNX predictor equal to the native model on the checks, else None (with the reason logged)."""
    if model.task != "classification" or not model.classes:
        log.warning("--onnx: %s is a %s model; serving the native flavor (the fast path covers classifiers)",
                    uri, model.task)
        return None
    try:
        import onnxruntime as ort
    except ImportError:
        log.warning("--onnx: onnxruntime is not installed; serving %s natively (pip install 'mloop[onnx]')", uri)
        return None
    samples = _samples(model)
    if not samples:
        log.warning("--onnx: %s has no input example or validation sample to check a conversion on; "
                    "serving the native flavor", uri)
        return None
    try:
        kinds = _kinds(samples[0])
        raw = _convert(model.native, samples[0], kinds)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        session = ort.InferenceSession(raw, sess_options=opts, providers=["CPUExecutionProvider"])
        onnx = OnnxPredictor(session, list(samples[0].columns), kinds, list(model.classes))
        for df in samples:
            labels, proba = onnx.predict(df)
            ref_labels, ref_proba = model.score(df) if hasattr(model, "score") else (
                model.predict(df), np.asarray(model.predict_proba(df)))
            diff = float(np.max(np.abs(proba - np.asarray(ref_proba, dtype="float64")))) if len(df) else 0.0
            if not np.array_equal(np.asarray(labels).astype(str), np.asarray(ref_labels).astype(str)) or diff > TOLERANCE:
                log.warning("--onnx: the ONNX conversion of %s differs from the native model on %d check rows "
                            "(max |Δp| = %.2g, labels equal: %s); serving the native flavor", uri, len(df), diff,
                            np.array_equal(np.asarray(labels).astype(str), np.asarray(ref_labels).astype(str)))
                return None
    except Exception as exc:  # noqa: BLE001 - unsupported operators and converter errors fall back
        log.warning("--onnx: %s does not convert to ONNX (%s: %s); serving the native flavor",
                    uri, type(exc).__name__, str(exc).splitlines()[0][:300] if str(exc) else "")
        return None
    log.info("--onnx: serving %s through onnxruntime (checked on %d rows)", uri, sum(len(d) for d in samples))
    return onnx
