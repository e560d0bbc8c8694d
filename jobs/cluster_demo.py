"""The job on a real Spark standalone cluster: a master and workers on loopback, started from the
installed pyspark, the project shipped as a zip and its jars, submitted with `spark-submit`.

`make cluster-demo` runs `main`: it generates accounts, starts the cluster, submits the job in
client mode, checks what it wrote (the run succeeded, every accepted account has an entity,
accuracy against the generated truth, the application ran on the cluster's executors) and
stops the cluster, whatever happened. The tests drive the same functions, including the fault
of a worker killed in the middle of a run (`--kill-worker-at STAGE`).

Standalone mode needs no installation beyond pyspark's own jars: pip's pyspark has no
`sbin/start-*.sh`, but its `bin/spark-class` starts the master and worker daemons.

Example::

    python -m jobs.cluster_demo --work build/cluster-demo --accounts 3000
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pyspark

from jobs.config import PROJECT_ROOT
from jobs.logs import configure_logging
from jobs.session import project_jars

logger = logging.getLogger(__name__)

SPARK_HOME = Path(pyspark.__file__).resolve().parent
PACKAGES = ("features", "resolution", "jobs")
CLUSTER_CONF = PROJECT_ROOT / "conf" / "cluster_demo.yaml"
HASH_KEY_ENV = "SELLER_ER_HASH_KEY"
APP_NAME = "seller-entity-resolution"


class ClusterError(RuntimeError):
    """The cluster did not start, or the submitted job did not do what it should."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def spark_env() -> dict[str, str]:
    """The environment of every Spark process here: this interpreter for Python workers (the
    venv's packages), loopback only, and SPARK_HOME at the installed pyspark."""
    env = dict(os.environ)
    env.update(
        SPARK_HOME=str(SPARK_HOME),
        SPARK_LOCAL_IP="127.0.0.1",
        PYSPARK_PYTHON=sys.executable,
        PYSPARK_DRIVER_PYTHON=sys.executable,
    )
    return env


@dataclass
class StandaloneCluster:
    """A running master and its workers; each worker is a process group of its own (the worker
    JVM, the executor JVMs it launches and their Python workers), as a machine would be."""

    master_url: str
    web_url: str
    master: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def state(self) -> dict[str, object]:
        """The master's status page as JSON (workers, applications)."""
        with urllib.request.urlopen(f"{self.web_url}/json/", timeout=10) as response:
            return json.loads(response.read().decode("utf-8"))

    def kill_worker(self, index: int) -> None:
        """SIGKILL worker `index` with everything it launched: a lost machine, no clean exit."""
        worker = self.workers[index]
        logger.warning("killing worker %d (process group %d)", index, worker.pid)
        with suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)


def _spark_class(main_class: str, *args: str) -> list[str]:
    return [str(SPARK_HOME / "bin" / "spark-class"), main_class, *args]


def _wait_for_workers(cluster: StandaloneCluster, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    alive = 0
    while time.monotonic() < deadline:
        if cluster.master.poll() is not None:
            raise ClusterError(f"the master exited with status {cluster.master.returncode}")
        with suppress(OSError, ValueError):
            alive = int(cluster.state().get("aliveworkers", 0))  # type: ignore[call-overload]
            if alive >= count:
                return
        time.sleep(1)
    raise ClusterError(f"{alive} of {count} workers registered within {timeout:.0f} s")


@contextmanager
def standalone_cluster(
    work: Path,
    *,
    workers: int = 2,
    cores: int = 1,
    memory: str = "3g",
    timeout: float = 120.0,
) -> Iterator[StandaloneCluster]:
    """Start a master and `workers` workers on 127.0.0.1 (daemon logs under `work/logs`), wait
    until every worker has registered, and stop them all on exit.

    Example::

        with standalone_cluster(Path("build/cluster")) as cluster:
            submit_job(cluster, ...)
    """
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = spark_env()
    port, web_port = _free_port(), _free_port()
    master_url, web_url = f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{web_port}"
    processes: list[subprocess.Popen[bytes]] = []

    def start(name: str, command: list[str]) -> subprocess.Popen[bytes]:
        with open(logs / f"{name}.log", "wb") as log:
            process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        processes.append(process)
        return process

    try:
        master = start(
            "master",
            _spark_class(
                "org.apache.spark.deploy.master.Master",
                "--host", "127.0.0.1", "--port", str(port), "--webui-port", str(web_port),
            ),
        )  # fmt: skip
        cluster = StandaloneCluster(master_url=master_url, web_url=web_url, master=master)
        for index in range(workers):
            worker_dir = work / f"worker-{index}"
            worker_dir.mkdir(parents=True, exist_ok=True)
            worker = start(
                f"worker-{index}",
                _spark_class(
                    "org.apache.spark.deploy.worker.Worker", master_url,
                    "--host", "127.0.0.1", "--cores", str(cores), "--memory", memory,
                    "--work-dir", str(worker_dir), "--webui-port", str(_free_port()),
                ),
            )  # fmt: skip
            cluster.workers.append(worker)
        _wait_for_workers(cluster, workers, timeout)
        logger.info("standalone cluster %s up: %d workers x %d cores", master_url, workers, cores)
        yield cluster
    finally:
        for process in reversed(processes):
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
        logger.info("standalone cluster %s stopped", master_url)


def package_project(destination: Path) -> Path:
    """The project's packages as one zip for `--py-files` (sources only, no caches)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(destination, "w", zipfile.ZIP_DEFLATED) as archive:
        for package in PACKAGES:
            for source in sorted((PROJECT_ROOT / package).rglob("*.py")):
                archive.write(source, source.relative_to(PROJECT_ROOT).as_posix())
    return destination


def package_dist(dist: Path) -> tuple[Path, list[Path]]:
    """The artifact to submit anywhere: `dist/seller_er.zip` (for `--py-files`) and copies of
    the jars (`--jars`), the same files the cluster demo submits."""
    dist.mkdir(parents=True, exist_ok=True)
    archive = package_project(dist / "seller_er.zip")
    jars = [Path(shutil.copy2(jar, dist / jar.name)) for jar in project_jars()]
    return archive, jars


def submit_command(
    cluster: StandaloneCluster,
    *,
    archive: Path,
    job_args: Sequence[str | Path],
    driver_memory: str = "2g",
    executor_memory: str = "2g",
) -> list[str]:
    """`spark-submit` of jobs/resolve_entities.py to the cluster, in client mode, with the
    project zip and the jars `make setup` fetched."""
    jars = ",".join(str(jar) for jar in project_jars())
    return [
        str(SPARK_HOME / "bin" / "spark-submit"),
        "--master", cluster.master_url,
        "--deploy-mode", "client",
        "--name", APP_NAME,
        "--driver-memory", driver_memory,
        "--executor-memory", executor_memory,
        "--jars", jars,
        "--py-files", str(archive),
        "--conf", "spark.ui.enabled=false",
        str(PROJECT_ROOT / "jobs" / "resolve_entities.py"),
        *[str(arg) for arg in job_args],
    ]  # fmt: skip


def submit_job(
    cluster: StandaloneCluster,
    command: Sequence[str],
    *,
    log_path: Path,
    env: dict[str, str],
    on_line: Callable[[str], None] | None = None,
    timeout: float = 1800.0,
) -> int:
    """Run `command` (from `submit_command`) to its end, its output copied to `log_path` and,
    line by line, to `on_line` (where a test injects a fault); returns the exit status."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    logger.info("submitting to %s (log: %s)", cluster.master_url, log_path)
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(
            list(command),
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        timer = threading.Timer(timeout, lambda: os.killpg(process.pid, signal.SIGKILL))
        timer.start()
        try:
            assert process.stdout is not None
            for line in process.stdout:
                log.write(line)
                log.flush()
                if on_line is not None:
                    on_line(line)
            return process.wait()
        finally:
            timer.cancel()


def worker_killer(
    cluster: StandaloneCluster, index: int, stage: str, killed: threading.Event
) -> Callable[[str], None]:
    """An `on_line` that kills worker `index` once the job logs that `stage` started, and sets
    `killed`."""
    marker = f"stage {stage}: started"

    def on_line(line: str) -> None:
        if marker in line and not killed.is_set():
            killed.set()
            cluster.kill_worker(index)

    return on_line


@dataclass(frozen=True)
class DemoResult:
    exit_status: int
    out_dir: Path
    log_path: Path
    summary: dict[str, object]
    master_url: str
    worker_killed: bool


def check_outputs(out_dir: Path, run_id: str, *, min_f1: float) -> dict[str, object]:
    """What the run wrote, read back without Spark: the run succeeded, every accepted account
    has one entity, and pairwise F1 against the generated truth is at least `min_f1`."""
    from deltalake import DeltaTable  # the readers a data scientist uses

    from jobs.tracking import job_run_metrics

    runs = DeltaTable(str(out_dir / "runs")).to_pandas()
    run = runs[runs.run_id == run_id]
    if run.empty or run.status.iloc[-1] != "succeeded":
        raise ClusterError(f"run {run_id} is not recorded as succeeded in {out_dir / 'runs'}")
    membership = DeltaTable(str(out_dir / "entity_membership")).to_pandas()
    if membership.account_id.duplicated().any():
        raise ClusterError("entity_membership holds an account twice")
    metrics = job_run_metrics(out_dir / "_mlflow", run_id)
    f1 = metrics.get("eval_pairwise_f1")
    if f1 is None or f1 < min_f1:
        raise ClusterError(f"pairwise F1 {f1} below {min_f1}")
    return {
        "accounts": len(membership),
        "entities": int(membership.entity_id.nunique()),
        "pairwise_f1": round(f1, 4),
        "bcubed_f1": round(metrics.get("eval_bcubed_f1", float("nan")), 4),
    }


def run_demo(
    work: Path,
    *,
    accounts: int,
    seed: int = 7,
    workers: int = 2,
    kill_worker_at: str | None = None,
    run_id: str = "cluster-demo",
    min_f1: float = 0.9,
) -> DemoResult:
    """Generate, start the cluster, submit, check, stop. The HMAC key is a fresh random one:
    the public demo key is refused on a cluster."""
    from jobs import generate_synthetic

    input_dir, truth = work / "in", work / "truth.parquet"
    generate_synthetic.main(
        ["--output", str(input_dir), "--accounts", str(accounts), "--seed", str(seed),
         "--truth", str(truth)]
    )  # fmt: skip
    out_dir = work / "out"
    archive = package_project(work / "seller_er.zip")
    env = spark_env()
    env[HASH_KEY_ENV] = secrets.token_hex(32)
    job_args = ["--input", input_dir, "--output", out_dir, "--conf", CLUSTER_CONF,
                "--truth", truth, "--run-id", run_id]  # fmt: skip
    with standalone_cluster(work / "cluster", workers=workers) as cluster:
        killed = threading.Event()
        on_line = worker_killer(cluster, 0, kill_worker_at, killed) if kill_worker_at else None
        status = submit_job(
            cluster,
            submit_command(cluster, archive=archive, job_args=job_args),
            log_path=work / "job.log",
            env=env,
            on_line=on_line,
        )
        apps = cluster.state().get("completedapps", [])
    if status != 0:
        raise ClusterError(f"the job exited with status {status}; see {work / 'job.log'}")
    names = [app.get("name") for app in apps]  # type: ignore[union-attr]
    if APP_NAME not in names:
        raise ClusterError(f"the master ran no application {APP_NAME!r} (it ran {names})")
    summary = check_outputs(out_dir, run_id, min_f1=min_f1)
    if kill_worker_at and not killed.is_set():
        raise ClusterError(f"the job never logged stage {kill_worker_at!r}: no worker was killed")
    return DemoResult(
        status, out_dir, work / "job.log", summary, cluster.master_url, killed.is_set()
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("build/cluster-demo"))
    parser.add_argument("--accounts", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--package-only",
        metavar="DIST",
        type=Path,
        default=None,
        help="only write the artifact (project zip and jars) to DIST and print how to submit it",
    )
    parser.add_argument(
        "--kill-worker-at",
        metavar="STAGE",
        default=None,
        help="kill worker 0 (SIGKILL, with its executors) when the job's STAGE starts",
    )
    args = parser.parse_args(argv)
    configure_logging()
    if args.package_only is not None:
        archive, jars = package_dist(args.package_only)
        print(
            f"spark-submit --py-files {archive} --jars {','.join(str(j) for j in jars)} "
            f"{PROJECT_ROOT / 'jobs' / 'resolve_entities.py'} --input IN --output OUT"
        )
        return 0
    if args.work.exists():
        shutil.rmtree(args.work)
    started = time.perf_counter()
    try:
        result = run_demo(
            args.work,
            accounts=args.accounts,
            seed=args.seed,
            workers=args.workers,
            kill_worker_at=args.kill_worker_at,
        )
    except ClusterError as error:
        print(f"cluster demo failed: {error}", file=sys.stderr)
        return 1
    print(
        f"cluster demo succeeded in {time.perf_counter() - started:.0f} s on a standalone "
        f"cluster of {args.workers} workers: {json.dumps(result.summary)}; tables under "
        f"{result.out_dir}, job log {result.log_path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
