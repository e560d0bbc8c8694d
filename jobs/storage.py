"""Where the job reads and writes: a local folder, or a URI of any filesystem Hadoop knows
(`s3a://bucket/prefix`, `abfss://container@account.dfs.core.windows.net/prefix`,
`gs://bucket/prefix`, `hdfs://namenode/prefix`, `file:///abs/path`).

Spark and Delta read and write URIs themselves; this module covers what the job does besides:
ask whether a dataset file or folder exists (through the session's Hadoop filesystem, with the
cluster's credentials and settings) and hand Python a local copy of a CSV file it must inspect
line by line. A plain path stays a local path (made absolute); anything with a scheme is a URI,
`file://` included, so the URI route is exercised without object storage (tests do).

Example::

    out = Location.parse("s3a://er-prod/out")
    str(out / "entity_membership")        # 's3a://er-prod/out/entity_membership'
    Storage(spark).is_dir(out / "runs" / "_delta_log")
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pyspark.sql import SparkSession

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


def is_uri(text: str) -> bool:
    """True for `scheme://...` (a Windows drive letter `C:\\` is not a scheme)."""
    return _SCHEME.match(text) is not None


@dataclass(frozen=True)
class Location:
    """A local path (absolute) or a URI (no trailing slash); `/` appends a name."""

    text: str

    @classmethod
    def parse(cls, raw: str | Path | Location) -> Location:
        if isinstance(raw, Location):
            return raw
        text = str(raw)
        if is_uri(text):
            scheme_end = text.index("://") + 3
            return cls(text[:scheme_end] + text[scheme_end:].rstrip("/"))
        return cls(str(Path(text).expanduser().absolute()))

    @property
    def is_local(self) -> bool:
        return not is_uri(self.text)

    @property
    def local_path(self) -> Path:
        """The local path; a URI has none (callers check `is_local` first)."""
        if not self.is_local:
            raise ValueError(f"{self.text} is not a local path")
        return Path(self.text)

    @property
    def name(self) -> str:
        return PurePosixPath(self.text.split("://", 1)[-1]).name

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.name).suffix

    def __truediv__(self, name: str) -> Location:
        if self.is_local:
            return Location(str(Path(self.text) / name))
        return Location(f"{self.text}/{name}")

    def __str__(self) -> str:
        return self.text


class Storage:
    """Filesystem questions about Locations: local paths through pathlib, URIs through the
    session's Hadoop FileSystem (so they see what Spark sees). Without a session, only local
    paths can be asked about."""

    def __init__(self, spark: SparkSession | None) -> None:
        self._spark = spark

    def _hadoop(self, location: Location) -> tuple[Any, Any]:
        if self._spark is None:
            raise ValueError(f"{location}: a URI needs a Spark session to look into")
        context = self._spark.sparkContext
        path = context._jvm.org.apache.hadoop.fs.Path(location.text)  # type: ignore[union-attr]
        return path.getFileSystem(context._jsc.hadoopConfiguration()), path  # type: ignore[union-attr]

    def exists(self, location: Location) -> bool:
        if location.is_local:
            return location.local_path.exists()
        fs, path = self._hadoop(location)
        return bool(fs.exists(path))

    def is_file(self, location: Location) -> bool:
        if location.is_local:
            return location.local_path.is_file()
        fs, path = self._hadoop(location)
        return bool(fs.exists(path) and fs.getFileStatus(path).isFile())

    def is_dir(self, location: Location) -> bool:
        if location.is_local:
            return location.local_path.is_dir()
        fs, path = self._hadoop(location)
        return bool(fs.exists(path) and fs.getFileStatus(path).isDirectory())

    @contextmanager
    def local_copy(self, location: Location) -> Iterator[Path]:
        """`location` as a local file: itself when local, else a temporary copy (deleted on
        exit) for the checks that read a file line by line in Python."""
        if location.is_local:
            yield location.local_path
            return
        folder = Path(tempfile.mkdtemp(prefix="seller-er-stage-"))
        try:
            target = folder / (location.name or "file")
            fs, path = self._hadoop(location)
            jvm = self._spark.sparkContext._jvm  # type: ignore[union-attr]
            fs.copyToLocalFile(False, path, jvm.org.apache.hadoop.fs.Path(str(target)), True)  # type: ignore[union-attr]
            yield target
        finally:
            shutil.rmtree(folder, ignore_errors=True)
