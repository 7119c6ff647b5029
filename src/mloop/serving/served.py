"""A loaded model made ready to serve: column order, output types and the V2 metadata computed
once, and the cheapest correct way to get predictions and probabilities from one call.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from mloop.errors import InvalidInput
from mloop.serving.payloads import v2_datatype
from mloop.serving.predlog import LogTarget

log = logging.getLogger(__name__)

# Final estimators whose `predict` is not `classes_[argmax(predict_proba)]` (Platt scaling).
_PREDICT_DIFFERS = {"SVC", "NuSVC"}
_NUMBER_TYPES = {int, float}


def _field(spec: Any, key: str, default: Any = None) -> Any:
    if isinstance(spec, dict):
        return spec.get(key, default)
    return getattr(spec, key, default)


def signature_inputs(model: Any) -> list[dict]:
    """The signature's inputs as `{"name", "dtype", "nullable"}` dicts, in column order."""
    sig = model.signature
    inputs = _field(sig, "inputs") or []
    return [{"name": _field(i, "name"), "dtype": str(_field(i, "dtype", "")),
             "nullable": bool(_field(i, "nullable", True))} for i in inputs]


def input_example(model: Any, columns: Sequence[str]) -> Any:
    """The manifest's input example as a DataFrame, or None."""
    import pandas as pd

    ex = (model.manifest or {}).get("input_example")
    try:
        if isinstance(ex, list) and ex and isinstance(ex[0], dict):
            return pd.DataFrame(ex)[list(columns)]
        if isinstance(ex, dict) and "data" in ex:
            return pd.DataFrame(ex["data"], columns=ex.get("columns") or list(columns))[list(columns)]
        if isinstance(ex, dict) and ex:
            return pd.DataFrame({c: v if isinstance(v, list) else [v] for c, v in ex.items()})[list(columns)]
    except (KeyError, ValueError):
        return None
    return None


class Served:
    """One model version as the server uses it. Immutable after construction: swapped whole on reload."""

    def __init__(self, model: Any, uri: str, *, name: str | None = None, version: int | None = None,
                 deployment: str = "", onnx: Any = None) -> None:
        import pandas as pd

        self._pd = pd
        self.model = model
        self.uri = uri
        mv = getattr(model, "version", None)
        self.name = name or (mv.name if mv is not None else (model.manifest or {}).get("name", "model"))
        self.version = version if version is not None else (mv.version if mv is not None else None)
        self.version_text = None if self.version is None else str(self.version)
        self.flavor = (model.manifest or {}).get("flavor", "unknown")
        self.inputs_spec = signature_inputs(model)
        self.inputs = [i["name"] for i in self.inputs_spec]
        self.task = getattr(model, "task", None) or ("classification" if model.classes else "regression")
        self.classes = list(model.classes) if model.classes is not None and self.task == "classification" else None
        self.class_keys = [str(c) for c in self.classes] if self.classes else None
        self.proba_columns = tuple(f"proba_{c}" for c in self.class_keys or ())
        self._classes_arr = np.asarray(self.classes) if self.classes else None
        self.onnx = onnx
        self._native = self._native_proba_path()
        self._score = getattr(model, "score", None) if self.task == "classification" else None
        self._plan_fast_frame()
        example = input_example(model, self.inputs)
        self.example = example
        check_samples: list = []
        arrow_types: list[Any] = [None] * len(self.inputs)
        pred_dtype: Any = np.dtype("float64") if self.task == "regression" else None
        if example is not None and len(example):
            try:
                prepared = model.prepare(example.head(1))
                check_samples.append(model.prepare(example))
                import pyarrow as pa

                schema = pa.Schema.from_pandas(prepared, preserve_index=False)
                arrow_types = [schema.field(c).type if c in schema.names else None for c in self.inputs]
                pred, _ = self.predict_frame(prepared)  # warm-up, and the output type
                pred_dtype = pred.dtype
            except Exception as exc:  # noqa: BLE001 - a bad example must not stop serving
                log.warning("warm-up on the input example of %s failed: %s", uri, exc)
        if pred_dtype is None and self.classes:
            pred_dtype = np.asarray(self.classes).dtype
        self._array_native = self._array_path(check_samples) if self.onnx is None else None
        self.prediction_datatype = v2_datatype(pred_dtype) if pred_dtype is not None else "BYTES"
        self.target = LogTarget(model=self.name, version=self.version, deployment=deployment,
                                columns=tuple(self.inputs), arrow_types=tuple(arrow_types),
                                proba_columns=self.proba_columns)
        self.metadata = self._v2_metadata()

    # -- predicting ---------------------------------------------------------------------------
    def _native_proba_path(self) -> Any:
        """The native estimator when one `predict_proba` call gives both outputs exactly."""
        if self.classes is None:
            return None
        native = getattr(self.model, "native", None)
        if native is None or not hasattr(native, "predict_proba") or not hasattr(native, "classes_"):
            return None
        final = native.steps[-1][1] if hasattr(native, "steps") else native
        if type(final).__name__ in _PREDICT_DIFFERS:
            return None
        try:
            if [str(c) for c in native.classes_] != self.class_keys:
                return None
        except TypeError:
            return None
        return native

    def frame(self, columns: dict, n: int) -> Any:
        """Columns -> a DataFrame in signature order, checked and coerced by the model's `prepare`.

        Clean inputs (every value already of its column's signature type) take a fast path that
        builds the frame the signature check would have produced, without running it; anything
        else goes through `prepare`, which coerces or names the offending column.
        """
        fast = self._fast_frame(columns, n)
        if fast is not None:
            return fast
        df = self._pd.DataFrame(columns, columns=self.inputs)
        if len(df) != n:
            raise InvalidInput(f"expected {n} rows, got {len(df)}")
        return self.model.prepare(df)

    def _plan_fast_frame(self) -> None:
        self._one_block = self._block_dtype = None
        kinds = []
        for spec in self.inputs_spec:
            dt = spec["dtype"]
            if dt in ("float64", "float32"):
                kinds.append(("f", np.dtype(dt)))
            elif dt == "int64":
                kinds.append(("i", np.dtype(dt)))
            elif dt == "bool":
                kinds.append(("b", np.dtype(bool)))
            elif dt == "string":
                kinds.append(("s", np.dtype(object)))
            else:
                self._fast = None
                return
        self._fast = kinds
        dtypes = {k[1] for k in kinds}
        self._one_block = kinds[0][1] if len(dtypes) == 1 and kinds[0][0] in "fi" else None
        # all-numeric inputs stack into one block of their common type (what DataFrame.to_numpy gives)
        if kinds and all(k[0] in "fi" for k in kinds):
            self._block_dtype = np.result_type(*dtypes)
        # object-dtype column labels: scikit-learn's feature-name check walks them on every call, and
        # pandas' default (arrow-backed) strings make that walk ~0.1 ms slower per call.
        self._index = self._pd.Index(self.inputs, dtype=object)

    def _array_path(self, samples: list) -> Any:
        """The native scikit-learn estimator when it can be handed the float block itself.

        pandas' per-call checks inside scikit-learn cost ~0.5 ms (most of a 1-row `predict_proba`).
        The block is the same call when every input is numeric, the estimator was fitted
        on exactly the signature's columns in that order (scikit-learn matches columns by position
        and only checks the names), and the block's answers equal the frame's on the input example
        (labels exactly, probabilities to 1e-12: the last bits follow the memory layout BLAS is
        given, as they do between batch sizes); otherwise (a ColumnTransformer selecting by name,
        say) the frame path stays.
        """
        native = self._native
        if native is None or self._block_dtype is None or not samples:
            return None
        names = getattr(native, "feature_names_in_", None)
        if names is None or [str(c) for c in names] != self.inputs:
            return None
        import warnings

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                for df in samples:
                    block = df.to_numpy(dtype=self._block_dtype)
                    got, want = native.predict_proba(block), native.predict_proba(df)
                    if not np.allclose(got, want, rtol=1e-12, atol=1e-15) or \
                            not np.array_equal(got.argmax(axis=1), want.argmax(axis=1)):
                        return None
        except Exception:  # noqa: BLE001 - any refusal keeps the frame path
            return None
        # The one warning the block path triggers by design, on every call.
        warnings.filterwarnings("ignore", message="X does not have valid feature names", category=UserWarning)
        return native

    def _fast_block(self, columns: dict, n: int) -> np.ndarray | None:
        """The inputs as one [n, k] block of their common numeric type, when clean."""
        if self._block_dtype is None:
            return None
        arrays = self._fast_arrays(columns, n)
        if arrays is None:
            return None
        return arrays[0].reshape(-1, 1) if len(arrays) == 1 else np.column_stack(arrays)

    def _fast_frame(self, columns: dict, n: int) -> Any:
        arrays = self._fast_arrays(columns, n)
        if arrays is None:
            return None
        if self._one_block is not None:
            block = arrays[0].reshape(-1, 1) if len(arrays) == 1 else np.column_stack(arrays)
            return self._pd.DataFrame(block, columns=self._index, copy=False)
        df = self._pd.DataFrame(dict(zip(self.inputs, arrays, strict=True)), copy=False)
        df.columns = self._index
        return df

    def _fast_arrays(self, columns: dict, n: int) -> list | None:
        kinds = self._fast
        if kinds is None or n == 0:
            return None
        arrays = []
        for name, (kind, dtype) in zip(self.inputs, kinds, strict=True):
            v = columns[name]
            if isinstance(v, np.ndarray):
                k = v.dtype.kind
                if len(v) != n or not (k == "f" and kind == "f" or k in "iu" and kind in "fi" and v.dtype != np.uint64
                                       or k == "b" and kind == "b"):
                    return None
                arrays.append(v.astype(dtype, copy=False))
                continue
            if len(v) != n:
                return None
            types = set(map(type, v))
            if kind == "f":
                if not types <= _NUMBER_TYPES:
                    return None
            elif kind == "i":
                if types != {int}:
                    return None
            elif kind == "b":
                if types != {bool}:
                    return None
            elif types != {str}:
                return None
            try:
                arrays.append(np.array(v, dtype=dtype))
            except (OverflowError, ValueError, TypeError):
                return None
        return arrays

    def predict_frame(self, df: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """`(prediction [n], probabilities [n, k] or None)` for a prepared frame."""
        if self.onnx is not None:
            return self.onnx.predict(df)
        if self._native is not None:
            proba = np.asarray(self._native.predict_proba(df), dtype="float64")
            return self._classes_arr[proba.argmax(axis=1)], proba
        if self._score is not None:
            return self._score(df)
        pred = np.asarray(self.model.predict(df))
        if self.classes is None:
            return pred, None
        proba = self.model.predict_proba(df)
        return pred, np.asarray(proba, dtype="float64")

    def predict(self, columns: dict, n: int) -> tuple[np.ndarray, np.ndarray | None]:
        native = self._array_native
        block = self._fast_block(columns, n) if native is not None else None
        try:
            if self.onnx is not None:  # clean columns feed the session directly, no DataFrame
                arrays = self._fast_arrays(columns, n)
                if arrays is not None:
                    return self.onnx.predict_feed(self.onnx.feed_columns(dict(zip(self.inputs, arrays, strict=True))))
            if block is not None:
                proba = np.asarray(native.predict_proba(block), dtype="float64")
                return self._classes_arr[proba.argmax(axis=1)], proba
            return self.predict_frame(self.frame(columns, n))
        except (ValueError, TypeError) as exc:  # e.g. NaN into an estimator that refuses it
            raise InvalidInput(f"{self.name} could not score the input: {str(exc).splitlines()[0][:500]}") from exc

    def predict_block(self, items: list[tuple[dict, int]]) -> tuple[dict, int, np.ndarray, np.ndarray | None]:
        """One model call over several requests' columns: `(merged columns, rows, prediction,
        probabilities)`, the requests' rows end to end."""
        if len(items) == 1:
            cols, n = items[0]
            return (cols, n, *self.predict(cols, n))
        merged: dict[str, list] = {}
        for c in self.inputs:
            part: list = []
            for cols, _ in items:
                v = cols[c]
                part.extend(v.tolist() if isinstance(v, np.ndarray) else v)
            merged[c] = part
        total = sum(n for _, n in items)
        return (merged, total, *self.predict(merged, total))

    @staticmethod
    def split(ns: list[int], pred: np.ndarray, proba: np.ndarray | None) -> list[tuple]:
        """Each request's rows of a block's outputs (`ns[i]` rows each, in order)."""
        out, pos = [], 0
        for n in ns:
            out.append((pred[pos:pos + n], None if proba is None else proba[pos:pos + n]))
            pos += n
        return out

    # -- metadata -----------------------------------------------------------------------------
    def _v2_metadata(self) -> dict:
        outputs = [{"name": "prediction", "datatype": self.prediction_datatype, "shape": [-1]}]
        if self.classes:
            outputs.append({"name": "probabilities", "datatype": "FP64", "shape": [-1, len(self.classes)]})
        params: dict[str, Any] = {"task": self.task, "uri": self.uri, "flavor": self.flavor,
                                  "onnx": self.onnx is not None}
        if self.classes:
            params["classes"] = list(self.class_keys)
        return {
            "name": self.name,
            "versions": [self.version_text] if self.version_text else [],
            "platform": f"mloop_{self.flavor}",
            "inputs": [{"name": i["name"], "datatype": v2_datatype(i["dtype"]), "shape": [-1]}
                       for i in self.inputs_spec],
            "outputs": outputs,
            "parameters": params,
        }

