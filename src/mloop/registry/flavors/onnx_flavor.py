"""ONNX models (an `onnx.ModelProto`), run with onnxruntime.

A graph with one 2-D input gets the signature's columns stacked in order; a graph with one input
per column gets each column. For classifiers the first output is the label and the second the
probabilities (a tensor, or skl2onnx's ZipMap list of dicts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mloop.errors import InvalidInput
from mloop.registry.flavors import module_roots

NAME = "onnx"
PACKAGES = ("onnx", "onnxruntime", "numpy")
FILE = "model.onnx"
_TYPES = {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(int64)": "int64",
          "tensor(int32)": "int32", "tensor(string)": "object", "tensor(bool)": "bool"}


def detect(model: Any) -> bool:
    return "onnx" in module_roots(model) and hasattr(model, "SerializeToString")


def describe(model: Any) -> tuple[str, list | None]:
    classes = None
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.name in ("classlabels_int64s", "classlabels_ints") and attr.ints:
                classes = [int(v) for v in attr.ints]
            elif attr.name == "classlabels_strings" and attr.strings:
                classes = [v.decode("utf-8") for v in attr.strings]
    if classes is not None or len(model.graph.output) >= 2:
        return "classification", classes
    return "regression", None


def save(model: Any, folder: Path, *, trust: bool = False) -> dict:
    (folder / FILE).write_bytes(model.SerializeToString())
    return {"file": FILE, "inputs": [i.name for i in model.graph.input],
            "outputs": [o.name for o in model.graph.output]}


def load(files: Any, manifest: dict, *, trust: bool = False) -> Predictor:
    import onnxruntime as ort

    options = manifest.get("flavor_options") or {}
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(files.read(options.get("file", FILE)), sess_options=opts,
                                   providers=["CPUExecutionProvider"])
    return Predictor(session, manifest)


def wrap(model: Any) -> Predictor:
    import onnxruntime as ort

    task, classes = describe(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return Predictor(session, {"task": task, "classes": classes})


class Predictor:
    def __init__(self, session: Any, manifest: dict) -> None:
        self.native = session
        self.task = manifest.get("task")
        self.classes = manifest.get("classes")
        self.inputs = session.get_inputs()
        self.outputs = [o.name for o in session.get_outputs()]

    def _feed(self, df: Any) -> dict:
        import numpy as np

        if len(self.inputs) == 1 and self.inputs[0].name not in df.columns:
            spec = self.inputs[0]
            return {spec.name: df.to_numpy(dtype=_TYPES.get(spec.type, "float32"))}
        feed = {}
        for spec in self.inputs:
            if spec.name not in df.columns:
                raise InvalidInput(f"the ONNX graph needs input {spec.name!r}, which the frame lacks")
            feed[spec.name] = np.asarray(df[spec.name].to_numpy(), dtype=_TYPES.get(spec.type, "float32")).reshape(-1, 1)
        return feed

    def _run(self, df: Any) -> list:
        return self.native.run(None, self._feed(df))

    def predict(self, df: Any) -> Any:
        import numpy as np

        return np.asarray(self._run(df)[0]).reshape(len(df), -1)[:, 0] if len(df) else np.empty(0)

    def predict_proba(self, df: Any) -> Any:
        import numpy as np

        outs = self._run(df)
        if len(outs) < 2:
            raise InvalidInput("this ONNX graph has no probability output")
        proba = outs[1]
        if isinstance(proba, list):  # ZipMap: a list of {class: p}
            keys = self.classes if self.classes is not None else list(proba[0]) if proba else []
            return np.array([[row[k] for k in keys] for row in proba], dtype="float64")
        return np.asarray(proba, dtype="float64")
