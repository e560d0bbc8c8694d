"""MLflow tracking of a run: config as parameters, counts and timings as metrics, reports as
artifacts, in a sqlite store under a configurable folder."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any

# MLflow is imported where it is used, not with this module: the job imports it while the Spark
# session's JVM starts (`jobs.resolve_entities`), not before.
if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from mlflow.tracking import MlflowClient

logger = logging.getLogger(__name__)


def _mlflow() -> ModuleType:
    """The `mlflow` module, imported on first use."""
    import mlflow

    return mlflow


_MAX_PARAM_LENGTH = 500
CHARTS_DIR = "charts"
# Beside, not under, quality/ (which holds the two JSON reports).
DATA_DOCS_DIR = "data_docs"


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}}` -> `{"a.b": 1}`; sequences become comma-joined text."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, (list, tuple)):
            flat[name] = ",".join(str(item) for item in value)
        else:
            flat[name] = value
    return flat


def tracking_uri(folder: Path) -> str:
    return f"sqlite:///{folder.resolve() / 'mlflow.db'}"


def find_job_run(folder: Path, run_id: str) -> tuple[MlflowClient, Any]:
    """A client on the sqlite store in `folder` and the MLflow run named after job run `run_id`
    (what `RunTracker` wrote); raises LookupError when there is none.

    Example::

        client, run = find_job_run(Path("out/_mlflow"), "run-1")
        run.data.metrics["eval_pairwise_f1"]
    """
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri(folder))
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        filter_string=f"attributes.run_name = '{run_id}'",
    )
    if not runs:
        raise LookupError(f"no MLflow run named {run_id} in {folder}")
    return client, runs[0]


def job_run_metrics(folder: Path, run_id: str) -> dict[str, float]:
    """The metrics of job run `run_id` in the sqlite store in `folder`."""
    return dict(find_job_run(folder, run_id)[1].data.metrics)


class RunTracker:
    """One MLflow run per job run, named after the job's run id.

    Example::

        with RunTracker(Path("out/_mlflow"), "seller-entity-resolution", "run-1") as tracker:
            tracker.log_metrics({"accounts": 10})
    """

    def __init__(
        self, folder: Path | None, experiment: str, run_id: str, *, uri: str | None = None
    ) -> None:
        if (folder is None) == (uri is None):
            raise ValueError("RunTracker: give a local folder or a tracking uri, one of them")
        self.folder = folder
        self.uri = uri
        self.experiment = experiment
        self.run_id = run_id
        self.mlflow_run_id: str | None = None

    def __enter__(self) -> RunTracker:
        # MLflow 3 reports usage unless told not to; the job must not call out.
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        from mlflow.tracking import MlflowClient

        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            uri = tracking_uri(self.folder)
            artifacts: str | None = (self.folder / "artifacts").resolve().as_uri()
        else:
            assert self.uri is not None
            uri, artifacts = self.uri, None  # the server's own artifact store
        _mlflow().set_tracking_uri(uri)
        client = MlflowClient(uri)
        found = client.get_experiment_by_name(self.experiment)
        if found is None:
            experiment_id = client.create_experiment(self.experiment, artifact_location=artifacts)
        else:
            experiment_id = found.experiment_id
        run = _mlflow().start_run(
            experiment_id=experiment_id,
            run_name=self.run_id,
            tags={"seller_er.run_id": self.run_id},
        )
        self.mlflow_run_id = run.info.run_id
        logger.info("MLflow run %s in %s", self.mlflow_run_id, uri)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _mlflow().end_run(status="FAILED" if exc_type is not None else "FINISHED")

    def log_params(self, params: Mapping[str, Any]) -> None:
        flat = {k: str(v)[:_MAX_PARAM_LENGTH] for k, v in flatten(params).items()}
        _mlflow().log_params(flat)

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        _mlflow().log_metrics({k: float(v) for k, v in metrics.items()})

    def log_text(self, text: str, artifact_file: str) -> None:
        _mlflow().log_text(text, artifact_file)

    def log_dict(self, data: Mapping[str, Any], artifact_file: str) -> None:
        _mlflow().log_dict(dict(data), artifact_file)

    def log_artifacts(self, folder: Path, artifact_path: str) -> None:
        """Log every file under `folder` under `artifact_path` (replacing same-named files)."""
        _mlflow().log_artifacts(str(folder), artifact_path=artifact_path)

    def log_chart(self, chart: Path | Figure, *, name: str | None = None) -> str:
        """Log a PNG file or a matplotlib figure under `charts/`; return its artifact path.

        A file is logged under its own name (`name` must then be omitted); a figure needs
        `name`, for example `"match_weights.png"`, and is saved in the format its suffix names.
        """
        if isinstance(chart, Path):
            if name is not None:
                raise ValueError(f"log_chart: {chart} is logged under its own name; drop `name`")
            if not chart.is_file():
                raise FileNotFoundError(f"chart {chart} does not exist; write it before logging")
            _mlflow().log_artifact(str(chart), artifact_path=CHARTS_DIR)
            return f"{CHARTS_DIR}/{chart.name}"
        if not name:
            raise ValueError("log_chart: a figure needs `name`, e.g. name='match_weights.png'")
        _mlflow().log_figure(chart, f"{CHARTS_DIR}/{name}")
        return f"{CHARTS_DIR}/{name}"

    def ui_command(self) -> str:
        if self.folder is None:
            return f"open {self.uri} and the run named {self.run_id}"
        return (
            f"mlflow ui --backend-store-uri {tracking_uri(self.folder)} "
            f"--port 5000  # then open http://127.0.0.1:5000 and the run named {self.run_id}"
        )
