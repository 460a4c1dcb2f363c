"""Where evidence files live. Files are addressed by a relative path
(``cam1/20261123/<event>/clip.mp4``), the same on every backend, and indexed in the store only
after they were completely written and hashed.

* ``LocalStorage``: a directory (the default). Several hosts of a cluster share it by mounting
  the same network filesystem.
* ``S3Storage``: an S3-compatible object store (MinIO, Ceph RGW, and the S3 APIs of public
  clouds) through boto3, the ``[s3]`` extra. Large files are written to a local staging
  directory first (a clip is muxed by PyAV, which needs a seekable file) and uploaded whole;
  an object becomes visible only when its upload completes, so nothing half-written is read.
  Credentials come from boto3's usual chain (environment, shared files, instance roles), never
  from cameras.toml.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any, Protocol

from pipeline.config import EvidenceConfig
from pipeline.errors import PipelineError

logger = logging.getLogger(__name__)


class StorageError(PipelineError):
    """An evidence file cannot be written, read or deleted; the message names the path."""


class EvidenceStorage(Protocol):
    def describe(self) -> str: ...

    def put(self, relpath: str, data: bytes) -> tuple[int, str]:
        """Store ``data`` atomically; (size, sha256)."""
        ...

    def staging(self, relpath: str) -> Path:
        """A local path where a large file for ``relpath`` is written before ``commit``."""
        ...

    def commit(self, relpath: str) -> tuple[int, str]:
        """Move the finished staging file to ``relpath``; (size, sha256)."""
        ...

    def open(self, relpath: str) -> IO[bytes]:
        """Read a stored file; StorageError if it is missing."""
        ...

    def local_path(self, relpath: str) -> Path | None:
        """A local file to serve directly (HTTP range requests), if this backend has one."""
        ...

    def exists(self, relpath: str) -> bool: ...

    def size(self, relpath: str) -> int | None:
        """Bytes of a stored file; None if it is missing."""
        ...

    def open_range(self, relpath: str, start: int, end: int) -> IO[bytes]:
        """Bytes ``start`` to ``end`` (inclusive) of a stored file: HTTP Range, so a browser
        can seek in a clip that is not on a local disk."""
        ...

    def delete(self, relpath: str) -> bool:
        """Remove a file; False if it was not there."""
        ...


def check_relpath(relpath: str) -> str:
    """Relative, normalised, inside the store: an indexed path must never reach outside it."""
    p = PurePosixPath(relpath)
    if not relpath or p.is_absolute() or ".." in p.parts or "\\" in relpath:
        raise StorageError(f"evidence path {relpath!r} is not a plain relative path")
    return p.as_posix()


# Evidence shows residents: readable by the service's user and group, never by other accounts
# (whatever the umask of whoever started the process).
EVIDENCE_FILE_MODE = 0o640


def temp_beside(path: Path) -> Path:
    """A temporary name next to ``path`` for a file being written."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")


def settle_file(tmp: Path, path: Path) -> None:
    """A file written at ``tmp`` (by a muxer) on disk, with evidence permissions, under its
    name ``path``."""
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    tmp.chmod(EVIDENCE_FILE_MODE)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def atomic_write(path: Path, data: bytes) -> tuple[int, str]:
    """Write ``data`` to ``path`` via temp file + fsync + rename; return (size, sha256)."""
    tmp = temp_beside(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, EVIDENCE_FILE_MODE)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)
    return len(data), hashlib.sha256(data).hexdigest()


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def hash_file(path: Path) -> tuple[int, str]:
    with path.open("rb") as fh:
        return sha256_stream(fh)


def sha256_stream(fh: IO[bytes]) -> tuple[int, str]:
    h = hashlib.sha256()
    size = 0
    for chunk in iter(lambda: fh.read(1 << 20), b""):
        h.update(chunk)
        size += len(chunk)
    return size, h.hexdigest()


class LocalStorage:
    """A directory; staging is the final path itself (PyAV writes there via a temp name)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def describe(self) -> str:
        return str(self.root)

    def _path(self, relpath: str) -> Path:
        return self.root / check_relpath(relpath)

    def put(self, relpath: str, data: bytes) -> tuple[int, str]:
        path = self._path(relpath)
        path.parent.mkdir(parents=True, exist_ok=True)
        return atomic_write(path, data)

    def staging(self, relpath: str) -> Path:
        path = self._path(relpath)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def commit(self, relpath: str) -> tuple[int, str]:
        return hash_file(self._path(relpath))

    def open(self, relpath: str) -> IO[bytes]:
        try:
            return self._path(relpath).open("rb")
        except OSError as exc:
            raise StorageError(f"evidence file {relpath!r} cannot be read: {exc}") from exc

    def local_path(self, relpath: str) -> Path | None:
        root = self.root.resolve()
        path = (root / check_relpath(relpath)).resolve()
        return path if path.is_relative_to(root) and path.is_file() else None

    def exists(self, relpath: str) -> bool:
        return self._path(relpath).is_file()

    def size(self, relpath: str) -> int | None:
        path = self._path(relpath)
        return path.stat().st_size if path.is_file() else None

    def open_range(self, relpath: str, start: int, end: int) -> IO[bytes]:
        import io

        with self.open(relpath) as fh:
            fh.seek(start)
            return io.BytesIO(fh.read(end - start + 1))

    def delete(self, relpath: str) -> bool:
        path = self._path(relpath)
        if not path.is_file():
            return False
        path.unlink()
        return True


class S3Storage:
    """Objects under ``prefix`` in ``bucket``; see the module docstring."""

    def __init__(
        self,
        bucket: str,
        *,
        staging_dir: Path,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        client: Any = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.staging_dir = staging_dir
        if client is None:
            try:
                import boto3
            except ImportError as exc:
                raise StorageError(
                    "S3 evidence storage needs boto3: pip install -e '.[s3]'"
                ) from exc
            client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)
        self.client = client
        self._errors: tuple[type[BaseException], ...] = _client_errors()

    def describe(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"s3://{self.bucket}/{self.prefix}{where}"

    def _key(self, relpath: str) -> str:
        rel = check_relpath(relpath)
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def put(self, relpath: str, data: bytes) -> tuple[int, str]:
        digest = hashlib.sha256(data).hexdigest()
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=self._key(relpath), Body=data, Metadata={"sha256": digest}
            )
        except self._errors as exc:
            raise StorageError(f"cannot store evidence {self.describe()}/{relpath}: {exc}") from exc
        return len(data), digest

    def staging(self, relpath: str) -> Path:
        path = self.staging_dir / check_relpath(relpath)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def commit(self, relpath: str) -> tuple[int, str]:
        path = self.staging(relpath)
        with path.open("rb") as fh:
            size, digest = sha256_stream(fh)
            fh.seek(0)
            try:
                self.client.upload_fileobj(
                    fh, self.bucket, self._key(relpath),
                    ExtraArgs={"Metadata": {"sha256": digest}},
                )  # fmt: skip
            except self._errors as exc:  # the staged file stays for a retry by hand
                raise StorageError(
                    f"cannot upload evidence {relpath} to {self.describe()}: {exc}"
                ) from exc
        path.unlink()
        return size, digest

    def open(self, relpath: str) -> IO[bytes]:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(relpath))["Body"]
        except self._errors as exc:
            raise StorageError(f"evidence file {relpath!r} cannot be read: {exc}") from exc
        return body  # type: ignore[no-any-return]

    def local_path(self, relpath: str) -> Path | None:  # noqa: ARG002  (no local copy kept)
        return None

    def exists(self, relpath: str) -> bool:
        return self.size(relpath) is not None

    def size(self, relpath: str) -> int | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(relpath))
        except self._errors:
            return None
        return int(head["ContentLength"])

    def open_range(self, relpath: str, start: int, end: int) -> IO[bytes]:
        try:
            body = self.client.get_object(
                Bucket=self.bucket, Key=self._key(relpath), Range=f"bytes={start}-{end}"
            )["Body"]
        except self._errors as exc:
            raise StorageError(f"evidence file {relpath!r} cannot be read: {exc}") from exc
        return body  # type: ignore[no-any-return]

    def delete(self, relpath: str) -> bool:
        if not self.exists(relpath):
            return False
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(relpath))
        except self._errors as exc:
            raise StorageError(f"cannot delete evidence {relpath!r}: {exc}") from exc
        return True


def _client_errors() -> tuple[type[BaseException], ...]:
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        return (OSError,)
    return (BotoCoreError, ClientError, OSError)


def open_storage(cfg: EvidenceConfig, root: Path | None = None) -> EvidenceStorage:
    """The configured backend; ``root`` overrides the configured evidence directory."""
    if cfg.s3 is None:
        return LocalStorage(root or cfg.root)
    s3 = cfg.s3
    return S3Storage(s3.bucket, staging_dir=s3.staging_dir, prefix=s3.prefix,
                     endpoint_url=s3.endpoint_url, region=s3.region)  # fmt: skip


def iter_chunks(fh: IO[bytes], size: int = 1 << 16) -> Iterator[bytes]:
    """Stream a stored file (for HTTP responses of backends without a local path)."""
    try:
        yield from iter(lambda: fh.read(size), b"")
    finally:
        fh.close()


def copy_to(storage: EvidenceStorage, relpath: str, dst: Path) -> None:
    with storage.open(relpath) as src, dst.open("wb") as out:
        shutil.copyfileobj(src, out)
