"""Self-contained bundles: `mloop build URI -o DIR` writes the model files and manifest, pinned
requirements, a Dockerfile and Kubernetes manifests; `mloop serve DIR` serves one with no metadata
store (air-gapped), logging predictions under `MLOOP_ARTIFACT_URI` unindexed (deployment
`bundle:<digest>`), which the index picks up on first read.

Layout::

    DIR/bundle.json          name, version, uri, digest, flavor, built_at, mloop version
    DIR/model/...            the model directory, verified file by file against its manifest
    DIR/model.manifest.jsonl the directory manifest (path, digest, size per file)
    DIR/requirements.txt     pinned libraries the model needs, plus mloop's wheel
    DIR/wheels/mloop-*.whl   the running mloop, packed as a wheel (mloop need not be on any index)
    DIR/Dockerfile           slim base, non-root, HEALTHCHECK on /v2/health/ready, binds 0.0.0.0
    DIR/k8s.yaml             a Deployment and a Service with readiness and liveness probes
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mloop.errors import Conflict, CorruptBlob, InvalidInput, NotFound

PORT = 8080


def build_bundle(uri: str, output: str | os.PathLike) -> dict:
    """Write the bundle of a registered model version to `output` (new or empty); returns bundle.json."""
    import mloop
    from mloop.artifacts import get_blob_store
    from mloop.artifacts.manifest import encode
    from mloop.store.schema import now_ms

    out = Path(output)
    if out.exists() and any(out.iterdir()):
        raise Conflict(f"{out} is not empty; pick a new directory for the bundle")
    mv = mloop.models.get(uri)
    blobs = get_blob_store()
    out.mkdir(parents=True, exist_ok=True)
    blobs.copy_to(mv.digest, out / "model", is_dir=True)
    entries = blobs.read_manifest(mv.digest)
    (out / "model.manifest.jsonl").write_bytes(encode(entries))
    manifest = mv.manifest or {}
    info = {"name": mv.name, "version": mv.version, "uri": f"models:/{mv.name}/{mv.version}", "digest": mv.digest,
            "flavor": mv.flavor, "built_at": now_ms(), "mloop": mloop.__version__,
            "task": manifest.get("task"), "classes": manifest.get("classes")}
    (out / "bundle.json").write_text(json.dumps(info, indent=2) + "\n")
    wheel = write_mloop_wheel(out / "wheels")
    (out / "requirements.txt").write_text(requirements_txt(manifest, f"./wheels/{wheel.name}"))
    (out / "Dockerfile").write_text(dockerfile(info))
    (out / "k8s.yaml").write_text(k8s_yaml(info))
    (out / ".dockerignore").write_text("**/__pycache__\n")
    return info


def requirements_txt(manifest: dict, mloop_requirement: str | None = None) -> str:
    """The model's pinned libraries, then mloop itself (by default `mloop==<running version>`)."""
    import mloop

    lines = [str(r) for r in manifest.get("requirements") or []]
    libs = manifest.get("libraries") or {}
    pinned = {r.split("==")[0].split(">=")[0].strip().lower() for r in lines}
    for dist, version in sorted(libs.items()):
        if dist.lower() not in pinned and version:
            lines.append(f"{dist}=={version}")
    lines.append(mloop_requirement or f"mloop=={mloop.__version__}")
    return "\n".join(dict.fromkeys(lines)) + "\n"


def write_mloop_wheel(folder: Path) -> Path:
    """Pack the running mloop (its package files and installed metadata) as a py3-none-any wheel
    (PEP 427) in `folder`, so a bundle installs without mloop being on an index. Entries are sorted
    and dated 1980-01-01: the same mloop gives the same bytes."""
    import base64
    import hashlib
    import importlib.metadata
    import zipfile

    import mloop

    dist = importlib.metadata.distribution("mloop")
    version = dist.version
    info_dir = f"mloop-{version}.dist-info"
    package = Path(mloop.__file__).parent
    files: list[tuple[str, bytes]] = []
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo"):
            files.append((f"mloop/{path.relative_to(package).as_posix()}", path.read_bytes()))
    files.append((f"{info_dir}/METADATA", (dist.read_text("METADATA") or "").encode()))
    entry_points = dist.read_text("entry_points.txt")
    if entry_points:
        files.append((f"{info_dir}/entry_points.txt", entry_points.encode()))
    files.append((f"{info_dir}/WHEEL", b"Wheel-Version: 1.0\nGenerator: mloop build\nRoot-Is-Purelib: true\n"
                                       b"Tag: py3-none-any\n"))
    record = []
    for name, data in files:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{info_dir}/RECORD,,")
    files.append((f"{info_dir}/RECORD", ("\n".join(record) + "\n").encode()))
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"mloop-{version}-py3-none-any.whl"
    tmp = folder / f".tmp-{os.getpid()}-{target.name}"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files:
            entry = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            zf.writestr(entry, data)
    os.replace(tmp, target)
    return target


def dockerfile(info: dict) -> str:
    return f"""# mloop bundle of {info['name']}/{info['version']} ({info['digest']})
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 MLOOP_HOME=/home/mloop/.mloop \\
    MLOOP_ARTIFACT_URI=/home/mloop/predictions
RUN useradd --create-home --uid 10001 mloop
WORKDIR /bundle
COPY requirements.txt .
COPY wheels/ wheels/
RUN pip install --no-cache-dir -r requirements.txt
COPY --chown=mloop:mloop . .
USER mloop
EXPOSE {PORT}
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \\
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:{PORT}/v2/health/ready').status == 200 else 1)"
# Binding 0.0.0.0 needs MLOOP_SERVE_TOKEN (or MLOOP_SERVE_INSECURE=1): the server refuses otherwise.
CMD ["mloop", "serve", "/bundle", "--host", "0.0.0.0", "--port", "{PORT}"]
"""


def k8s_yaml(info: dict) -> str:
    import yaml

    name = f"mloop-{info['name']}".lower().replace("_", "-").replace(".", "-")[:63]
    labels = {"app": name, "mloop/model": info["name"], "mloop/version": str(info["version"])}
    probe = {"httpGet": {"path": "/v2/health/ready", "port": PORT}, "periodSeconds": 10, "timeoutSeconds": 3}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 2, "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                    "containers": [{
                        "name": "model", "image": f"{name}:{info['version']}",
                        "ports": [{"containerPort": PORT, "name": "http"}],
                        "env": [{"name": "MLOOP_SERVE_TOKEN",
                                 "valueFrom": {"secretKeyRef": {"name": f"{name}-token", "key": "token"}}}],
                        "readinessProbe": {**probe, "initialDelaySeconds": 5},
                        "livenessProbe": {"httpGet": {"path": "/v2/health/live", "port": PORT},
                                          "periodSeconds": 10, "initialDelaySeconds": 10},
                        "resources": {"requests": {"cpu": "500m", "memory": "512Mi"},
                                      "limits": {"memory": "1Gi"}},
                    }],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": labels},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": PORT}]},
    }
    return yaml.safe_dump_all([deployment, service], sort_keys=False)


class BundleFiles:
    """The bundle's model files, each read verified against the directory manifest (the same
    interface the registry's flavors read through)."""

    def __init__(self, root: Path, label: str) -> None:
        from mloop.artifacts.manifest import decode

        self.root = root
        self.label = label
        self.entries = {e.path: e for e in decode((root / "model.manifest.jsonl").read_bytes())}

    def read(self, path: str) -> bytes:
        from mloop.artifacts.hashing import digest_of_bytes

        entry = self.entries.get(path)
        if entry is None:
            raise NotFound(f"{self.label} has no file {path!r}")
        data = (self.root / "model" / path).read_bytes()
        if digest_of_bytes(data) != entry.digest:
            raise CorruptBlob(f"{self.label}: {path} does not match its digest {entry.digest}; rebuild the bundle")
        return data

    def folder(self) -> Path:
        for path in self.entries:
            self.read(path)
        return self.root / "model"


def load_bundle(path: str | os.PathLike, *, trust: bool = False) -> tuple[Any, dict]:
    """Load the model of a bundle directory with no metadata store; returns `(Model, bundle.json)`."""
    import yaml

    from mloop.registry import flavors
    from mloop.registry.model import MANIFEST, Model

    root = Path(path)
    try:
        info = json.loads((root / "bundle.json").read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{root} is not an mloop bundle (no readable bundle.json): {exc}") from exc
    label = f"bundle of '{info['name']}/{info['version']}'"
    files = BundleFiles(root, label)
    manifest = yaml.safe_load(files.read(MANIFEST))
    predictor = flavors.get(manifest["flavor"]).load(files, manifest, trust=trust)
    return Model(predictor, manifest, digest=info["digest"], label=label), info
