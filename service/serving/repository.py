"""The model repository manager: discover, load, warm, hot-swap and drain versions.

Mirrors TensorFlow Serving's model server behaviour on a ``models/<name>/<version>/``
tree: a version policy picks the versions to serve; new versions are loaded and warmed
before they take traffic; a version that fails to load is reported in the status and
leaves the versions already serving untouched; a version that disappears (or leaves the
policy) stops taking new requests and is unloaded once its in-flight requests finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cnnlab.layout import is_complete_version, list_models, list_versions
from service.errors import Conflict, NotFound, NotReady
from service.runtime.heap import give_back
from service.runtime.metrics import Metrics, applied_generation
from service.runtime.settings import Settings
from service.serving.admin_state import WATCH_INTERVAL_S, AdminState, ModelState, StateFile
from service.serving.batcher import DynamicBatcher
from service.serving.entry import ModelEntry, VersionStatus, fingerprint
from service.serving.policy import VersionPolicy, parse_policy
from service.serving.version import LoadError, ServedVersion, load_version, warm_up

log = logging.getLogger(__name__)

# how long an admin action waits for the other workers (one may be loading a model)
CONFIRM_TIMEOUT_S = 120.0


class ModelRepository:
    def __init__(self, settings: Settings, metrics: Metrics, device: str,
                 state_file: StateFile, metrics_dir: Path | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.device = device
        self.state_file = state_file
        self.metrics_dir = metrics_dir  # every worker's metrics (several workers), or None
        self.admin = AdminState()
        # parsed now: a bad policy stops the start-up with its message
        self.default_policy = parse_policy(settings.version_policy)
        self.policies = {name: parse_policy(text) for name, text in settings.model_policies.items()}
        self.root = settings.models_dir.resolve()
        self.models: dict[str, ModelEntry] = {}
        self.executor = ThreadPoolExecutor(settings.batch_threads,
                                           thread_name_prefix="inference")
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self.last_scan_error: str = ""

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Load what the admin state and the policies say, then keep watching both."""
        await self.apply_admin(self.state_file.read())
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._watch_admin_state()))
        if self.settings.poll_interval_s > 0:
            self._tasks.append(loop.create_task(self._poll()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for entry in self.models.values():
            for sv in list(entry.served.values()):
                if sv.batcher:
                    await sv.batcher.close()
        for task in list(self._background):
            task.cancel()
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_interval_s)
            try:
                await self.refresh()
            except Exception:  # a bad scan must never kill the poller
                log.exception("model repository scan failed")

    async def _watch_admin_state(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)
            if not self.state_file.changed():
                continue
            try:
                state = self.state_file.read()
                if state.generation != self.admin.generation:
                    await self.apply_admin(state)
            except Exception:  # a bad state file must never kill the watcher
                log.exception("applying the admin state failed")

    # ------------------------------------------------------------------ queries
    def enabled(self, name: str) -> bool:
        """Whether ``name`` is served (not unloaded by an admin)."""
        return self.admin.models.get(name, ModelState()).enabled

    @property
    def ready(self) -> bool:
        enabled = [e for e in self.models.values() if self.enabled(e.name)]
        return bool(enabled) and all(e.served for e in enabled)

    def entry(self, name: str) -> ModelEntry:
        entry = self.models.get(name)
        if entry is None:
            known = ", ".join(sorted(self.models)) or "none"
            raise NotFound(f"model {name!r} not found (models: {known})")
        return entry

    def labels(self, name: str) -> dict[str, int]:
        """Model ``name``'s version labels: the configured ones, overridden by the
        admin's. A label is kept while its version is not served (unloaded, removed, or
        outside the policy); requests through it are refused until it is again."""
        return {**self.settings.version_labels.get(name, {}),
                **self.admin.model_labels(name)}

    def unavailable_labels(self, name: str) -> list[str]:
        """The labels of ``name`` whose version is not served now."""
        served = self.entry(name).served
        return sorted(label for label, v in self.labels(name).items() if v not in served)

    def resolve(self, name: str, version: int | str | None = None,
                label: str | None = None) -> ServedVersion:
        """The version to serve: a given number, a label, or the newest available."""
        entry = self.entry(name)
        if label is not None:
            labels = self.labels(name)
            if label not in labels:
                known = ", ".join(sorted(labels)) or "none"
                raise NotFound(f"model {name!r} has no version label {label!r} (labels: "
                               f"{known})")
            version = labels[label]
            if version not in entry.served:
                raise Conflict(f"label {label!r} of model {name!r} points at version "
                               f"{version}, which is not served now (served: "
                               f"{sorted(entry.served) or 'none'})")
        if version is None:
            sv = entry.latest()
            if sv is None:
                raise NotReady(f"model {name!r} has no version ready to serve")
            return sv
        try:
            number = int(version)
        except (TypeError, ValueError):
            raise NotFound(f"version {version!r} of model {name!r}: not an integer") from None
        sv = entry.served.get(number)
        if sv is None:
            raise NotFound(f"model {name!r} has no available version {number} "
                           f"({self._why_not_served(entry, number)})")
        return sv

    def _why_not_served(self, entry: ModelEntry, version: int) -> str:
        """What is served instead of ``version``, and why it is not."""
        served = f"serving {sorted(entry.served)}" if entry.served else "serving none"
        on_disk = list_versions(self.root / entry.name)
        if not self.enabled(entry.name):
            why = "the model is unloaded"
        elif version in entry.failed:
            why = f"version {version} failed to load"
        elif version in entry.loading:
            why = f"version {version} is loading"
        elif version not in on_disk:
            why = f"no version {version} in the repository (on disk: {on_disk})"
        else:
            why = (f"the version policy {entry.policy.text!r} does not select it "
                   "(CNNLAB_VERSION_POLICY, CNNLAB_MODEL_POLICIES)")
        return f"{served}; {why}"

    @contextlib.asynccontextmanager
    async def lease(self, name: str, version: int | str | None = None,
                    label: str | None = None) -> AsyncIterator[ServedVersion]:
        """Hold a version for one request: it is not unloaded until the lease ends."""
        sv = self.resolve(name, version, label)
        sv.acquire()
        try:
            yield sv
        finally:
            sv.release()

    def status(self, name: str) -> list[VersionStatus]:
        return self.entry(name).status()

    # ------------------------------------------------------------------ admin
    async def administer(self, change: Callable[[AdminState], None]) -> None:
        """Change the admin state, apply it here, publish it to every worker, and wait
        until all live workers have applied it (503 if some have not in time: they still
        will, when they next read the state)."""
        async with self.state_file.update() as state:
            change(state)
            await self.apply_admin(state)
        if self.metrics_dir is None:
            return
        deadline = time.monotonic() + CONFIRM_TIMEOUT_S
        while applied_generation(self.metrics_dir) < state.generation:
            if time.monotonic() > deadline:
                raise NotReady("applied on this worker, but not yet on every worker; "
                               "they apply it when they next read the admin state")
            await asyncio.sleep(WATCH_INTERVAL_S / 2)

    async def apply_admin(self, state: AdminState) -> None:
        """Serve what ``state`` says: models unloaded or loaded again, version labels.
        Nothing in a state is refused here: an admin route checks what its change
        changes before it is made, and a label whose version has gone is kept and
        reported (``unavailable_labels``), so no state blocks the next action. A reload
        (``AdminState.rescan``) tries versions that failed to load again."""
        if state.reloads != self.admin.reloads:
            for entry in self.models.values():
                entry.failed.clear()
        self.admin = state
        await self.refresh()
        self.metrics.admin_generation.set(state.generation)

    # ------------------------------------------------------------------ reconcile
    def _policy(self, name: str) -> VersionPolicy:
        return self.policies.get(name, self.default_policy)

    async def refresh(self, only: str | None = None) -> None:
        """Bring the served set in line with the disk and the policies."""
        async with self._lock:
            names = list_models(self.root)
            if not self.root.is_dir():
                self.last_scan_error = f"models directory {self.root} does not exist"
            else:
                self.last_scan_error = ""
            for name in names:
                if name not in self.models:
                    self.models[name] = ModelEntry(name=name, policy=self._policy(name))
            for name in list(self.models):
                if only is not None and name != only:
                    continue
                await self._reconcile(self.models[name], present=name in names)
                if name not in names and not self.models[name].served:
                    del self.models[name]
            self._update_gauges()

    async def _reconcile(self, entry: ModelEntry, present: bool) -> None:
        model_dir = self.root / entry.name
        on_disk = [v for v in list_versions(model_dir) if is_complete_version(model_dir / str(v))]
        loadable = [v for v in on_disk if v not in entry.failed
                    or entry.failed[v][0] != fingerprint(model_dir / str(v))]
        enabled = self.enabled(entry.name)
        desired = set(entry.policy.select(loadable)) if (present and enabled) else set()
        for v in sorted(desired - set(entry.served), reverse=True):
            await self._load(entry, v)
        # Keep serving what we have if nothing desired could be loaded (a broken newest
        # version never takes a good one down): fall back through older versions first.
        if present and enabled and not (desired & set(entry.served)):
            for v in sorted(set(loadable) - desired - set(entry.failed), reverse=True):
                if v in entry.served or await self._load(entry, v):
                    desired.add(v)
                    break
        for v in set(entry.served) - desired:
            self._retire(entry, v, "removed from disk" if v not in on_disk else
                         "unloaded" if not enabled else "superseded by version policy")

    async def _load(self, entry: ModelEntry, version: int) -> bool:
        """Load, warm and serve one version; False (and the error in the status) when it
        cannot be, leaving the versions already serving untouched."""
        sv = await self._load_warm(entry, version)
        if sv is None:
            return False
        sv.executor = self.executor
        sv.batcher = self._batcher(sv)
        sv.batcher.start()
        self._serve(entry, sv)
        return True

    async def _load_warm(self, entry: ModelEntry, version: int) -> ServedVersion | None:
        """The version loaded and warmed up, off the event loop; None when it fails."""
        path = self.root / entry.name / str(version)
        entry.loading.add(version)
        sv: ServedVersion | None = None
        try:
            sv = await asyncio.to_thread(load_version, entry.name, version, path, self.device,
                                         intra_op_threads=self.settings.tf_threads()[0],
                                         runtime=self.settings.runtime)
            if self.settings.warmup:
                await asyncio.to_thread(warm_up, sv, self.settings.max_batch_size)
            return sv
        except Exception as exc:  # any failure: report it, keep the versions serving
            if sv is not None:
                sv.close()
                del sv
                await asyncio.to_thread(give_back)  # as after an unload: off the event loop
            msg = str(exc) if isinstance(exc, LoadError) else f"{type(exc).__name__}: {exc}"
            entry.failed[version] = (fingerprint(path), msg)
            self.metrics.load_failures.labels(entry.name).inc()
            log.error("model %s version %d failed to load: %s", entry.name, version, msg)
            return None
        finally:
            entry.loading.discard(version)

    def _batcher(self, sv: ServedVersion) -> DynamicBatcher:
        """The version's dynamic batcher, reporting to its metric series."""
        labels = (sv.name, str(sv.version))
        batch_hist = self.metrics.batch_size.labels(*labels)
        infer_hist = self.metrics.inference.labels(*labels)
        wait_hist = self.metrics.queue_wait.labels(*labels)
        last = self.metrics.last_inference.labels(*labels)

        def observe(size: int, seconds: float, waits: list[float]) -> None:
            batch_hist.observe(size)
            infer_hist.observe(seconds)
            last.set(time.time())
            for wait in waits:
                wait_hist.observe(wait)

        return DynamicBatcher(
            sv.predict_sync, self.executor,
            max_batch_size=self.settings.max_batch_size,
            max_wait_s=self.settings.max_wait_ms / 1000,
            max_queue_images=self.settings.max_queue_images,
            max_concurrent_batches=self.settings.batch_threads,
            observe=observe,
            on_depth=self.metrics.queue_depth.labels(*labels).set,
            on_shed=self.metrics.shed.labels(*labels).inc,
        )

    def _serve(self, entry: ModelEntry, sv: ServedVersion) -> None:
        """From here on the version takes traffic."""
        labels = (sv.name, str(sv.version))
        self.metrics.load_seconds.labels(*labels).set(sv.load_seconds)
        self.metrics.warmup_seconds.labels(*labels).set(sv.warmup_seconds)
        entry.failed.pop(sv.version, None)
        entry.ended.pop(sv.version, None)
        entry.served[sv.version] = sv
        log.info("model %s version %d AVAILABLE on %s (%s; load %.2f s, warm-up %.2f s)",
                 sv.name, sv.version, sv.device, sv.runs_as, sv.load_seconds,
                 sv.warmup_seconds)

    def _retire(self, entry: ModelEntry, version: int, reason: str) -> None:
        sv = entry.served.pop(version)  # no new request can resolve it from now on
        entry.unloading.add(version)
        log.info("model %s version %d UNLOADING (%s, %d in flight)", entry.name, version,
                 reason, sv.inflight)

        async def drain() -> None:
            started = time.perf_counter()
            await sv.drained()
            if sv.batcher:
                await sv.batcher.close()
            sv.close()
            await asyncio.to_thread(give_back)  # the trim runs without the GIL
            entry.unloading.discard(version)
            entry.ended[version] = reason
            log.info("model %s version %d END (drained in %.2f s)", entry.name, version,
                     time.perf_counter() - started)

        task = asyncio.get_running_loop().create_task(drain())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _update_gauges(self) -> None:
        for name, entry in self.models.items():
            self.metrics.versions_loaded.labels(name).set(len(entry.served))
