"""Reads the Dagster instance incrementally and keeps a ``MetricState`` up to date.

Runs: the run table is polled for runs updated since the newest update seen (minus an overlap, so a
late write is not missed; re-reading a run is idempotent).

Events, two ways, chosen by the storage:

- one events table (Postgres in production, consolidated SQLite): one query per event type after
  that type's storage-id cursor (``EventLogStorage.get_event_records``), so a refresh costs a fixed
  number of queries plus the new records, however many runs changed;
- run-sharded SQLite (the local default: one database file per run, no global storage ids, cross-run
  cursor queries refused): each run's records after that run's own cursor (``get_records_for_run``),
  read while the run is in flight and once more when it reaches a terminal status, then never again;
  runless events (observations reported by sensors, freshness changes) under the pseudo-run ``""``.

Counters and histograms therefore accumulate each event exactly once per exporter process; a fresh
process re-reads the whole history and reports the same totals, so Prometheus does not see a reset.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from dagster import AssetKey, DagsterInstance, DagsterRunStatus, EventRecordsFilter, RunsFilter
from dagster._core.errors import DagsterEventLogInvalidForRun
from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.scheduler.instigation import TickStatus
from dagster._core.storage.event_log.base import EventLogRecord

from astromined.monitoring import catalog, event_metadata
from astromined.monitoring.event_metadata import MetadataError, Placement
from astromined.monitoring.metric_state import MetricState

log = logging.getLogger(__name__)

RUNLESS_RUN_ID = ""
TERMINAL = frozenset({DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED})
IN_FLIGHT = frozenset({DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING})
# The event types the exporter reads, in the order the one-table path queries them: a step's end
# before its start (and its placement), so that an end seen implies its start is seen in the same
# refresh; records are then processed in storage-id order.
EVENT_TYPES = (
    DagsterEventType.RUN_FAILURE,
    DagsterEventType.STEP_SUCCESS,
    DagsterEventType.STEP_FAILURE,
    DagsterEventType.ASSET_CHECK_EVALUATION,
    DagsterEventType.ASSET_MATERIALIZATION,
    DagsterEventType.ASSET_OBSERVATION,
    DagsterEventType.ENGINE_EVENT,
    DagsterEventType.FRESHNESS_STATE_CHANGE,
    DagsterEventType.STEP_START,
)
# Failed sensor/schedule ticks are counted over this window (astromined_instigator_failed_ticks_1h).
FAILED_TICKS_WINDOW_S = 3600.0


@dataclasses.dataclass
class _Run:
    job: str
    status: DagsterRunStatus
    updated_at: float
    cursor: str | None = None
    # Per-run pairing state, dropped once the run is fully read.
    step_starts: dict[str, float] = dataclasses.field(default_factory=dict)
    placements: dict[str, Placement] = dataclasses.field(default_factory=dict)
    placement_counted: set[str] = dataclasses.field(default_factory=set)  # steps counted in this attempt


@dataclasses.dataclass(frozen=True)
class RefreshStats:
    duration_s: float
    runs_read: int
    records_read: int
    errors: int
    runs_synced: bool  # False when the run table could not be read (values are from an older refresh)


def unwrap_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """MetadataValue objects -> plain Python values (JSON as dicts, text as str, ...)."""
    return {key: getattr(value, "value", value) for key, value in metadata.items()}


class InstanceReader:
    def __init__(
        self,
        instance: DagsterInstance,
        state: MetricState,
        *,
        clock: Callable[[], float] = time.time,
        batch_size: int = 1000,
        overlap_s: float = 300.0,
    ):
        self.instance = instance
        self.state = state
        self._clock = clock
        self._batch_size = batch_size
        self._overlap_s = overlap_s
        self._runs: dict[str, _Run] = {}
        self._to_read: set[str] = set()
        self._unreadable: set[str] = set()
        self._runless = _Run(job="", status=DagsterRunStatus.SUCCESS, updated_at=0.0)
        self._watermark: float | None = None
        self._errors = 0
        self._source_failed = False
        # Assets the freshness daemon reported on: a policy asset never materialized has no asset-key row,
        # so get_asset_keys() alone would never show its UNKNOWN state.
        self._freshness_keys: set[AssetKey] = set()
        # Readiness rows of each readiness asset's latest materialization: asset -> (timestamp, rows).
        self._readiness: dict[str, tuple[float, list[tuple[str, str, str]]]] = {}
        self._one_table = not instance.event_log_storage.is_run_sharded
        self._type_cursors: dict[DagsterEventType, int | None] = dict.fromkeys(EVENT_TYPES)
        self.state.replace(catalog.EXPORTER_LAST_SUCCESSFUL_REFRESH, {(): 0.0})

    # -- bookkeeping ------------------------------------------------------------------------------

    def _error(self, kind: str, message: str, *, source: bool = False) -> None:
        """Count and log one error; ``source``: a whole source could not be read this refresh (its values
        are stale until a later refresh reads it), as opposed to one record skipped for good."""
        self._errors += 1
        self._source_failed = self._source_failed or source
        self.state.inc(catalog.EXPORTER_ERRORS, (kind,))
        log.warning("exporter: %s: %s", kind, message)

    def refresh(self) -> RefreshStats:
        started = time.perf_counter()
        errors_before = self._errors
        self._source_failed = False
        runs_read = records_read = 0
        runs_synced = True
        try:
            self._sync_runs()
        except Exception as exc:  # the instance is unreachable: keep the last values, try again later
            runs_synced = False
            self._error("runs", f"cannot read run records: {type(exc).__name__}: {exc}", source=True)
        if self._one_table:
            runs_read, records_read = self._read_one_table()
        else:
            for run_id in sorted(self._to_read, key=lambda r: self._runs[r].updated_at):
                read = self._read_run(run_id)
                if read is not None:
                    runs_read += 1
                    records_read += read
            records_read += self._read_runless()
        for kind, source in (
            ("queued_runs", self._refresh_queued_age),
            ("started_runs", self._refresh_started_age),
            ("freshness", self._refresh_freshness),
            ("instigators", self._refresh_instigators),
            ("daemons", self._refresh_daemons),
        ):
            try:
                source()
            except Exception as exc:
                self._error(kind, f"{type(exc).__name__}: {exc}", source=True)
        duration = time.perf_counter() - started
        finished = self._clock()
        self.state.replace(catalog.EXPORTER_SCRAPE_DURATION, {(): duration})
        self.state.replace(catalog.EXPORTER_LAST_REFRESH, {(): finished})
        if not self._source_failed:  # every source read: what is served is current as of now
            self.state.replace(catalog.EXPORTER_LAST_SUCCESSFUL_REFRESH, {(): finished})
        return RefreshStats(duration, runs_read, records_read, self._errors - errors_before, runs_synced)

    # -- runs -------------------------------------------------------------------------------------

    def _sync_runs(self) -> None:
        if self._watermark is None:
            records = self.instance.get_run_records(order_by="update_timestamp", ascending=True)
        else:
            since = dt.datetime.fromtimestamp(self._watermark - self._overlap_s, dt.UTC)
            records = self.instance.get_run_records(
                RunsFilter(updated_after=since), order_by="update_timestamp", ascending=True
            )
        for record in records:
            self._upsert(record)
        if self.instance.get_runs_count() != len(self._runs):
            self._reconcile()
        self._refresh_run_gauge()

    def _upsert(self, record) -> None:
        run = record.dagster_run
        updated_at = record.update_timestamp.timestamp()
        self._watermark = max(self._watermark or updated_at, updated_at)
        known = self._runs.get(run.run_id)
        if known is None:
            known = _Run(job=run.job_name, status=run.status, updated_at=updated_at)
            self._runs[run.run_id] = known
        elif known.status == run.status and known.updated_at == updated_at:
            return
        known.status, known.updated_at = run.status, updated_at
        if self._one_table:
            return
        if (run.status in IN_FLIGHT or run.status in TERMINAL) and run.run_id not in self._unreadable:
            self._to_read.add(run.run_id)

    def _reconcile(self) -> None:
        """The run table and our map disagree (runs deleted, or created out of order): resync ids."""
        present = set(self.instance.get_run_ids())
        for gone in set(self._runs) - present:
            del self._runs[gone]
            self._to_read.discard(gone)
        missing = list(present - set(self._runs))
        for start in range(0, len(missing), 500):
            for record in self.instance.get_run_records(RunsFilter(run_ids=missing[start : start + 500])):
                self._upsert(record)

    def _refresh_run_gauge(self) -> None:
        counts = Counter((run.job, run.status.value) for run in self._runs.values())
        jobs = {job for job, _ in counts}
        self.state.replace(
            catalog.RUNS,
            {(job, status): counts.get((job, status), 0) for job in jobs for status in catalog.RUN_STATUSES},
        )

    def _read_run(self, run_id: str) -> int | None:
        run = self._runs[run_id]
        try:
            read = self._read_records(run_id, run)
        except DagsterEventLogInvalidForRun as exc:  # a corrupt record: reading again will not help
            self._unreadable.add(run_id)
            self._to_read.discard(run_id)
            self._error("run_events", f"run {run_id}: event log cannot be deserialized ({exc}); skipped")
            return None
        except Exception as exc:  # transient: the cursor did not move, the next refresh retries
            self._error("run_events", f"run {run_id}: {type(exc).__name__}: {exc}", source=True)
            return None
        if run.status in TERMINAL:
            self._to_read.discard(run_id)
            run.step_starts.clear()
            run.placements.clear()
            run.placement_counted.clear()
        return read

    def _read_runless(self) -> int:
        try:
            return self._read_records(RUNLESS_RUN_ID, self._runless)
        except Exception as exc:  # the cursor did not move past what failed; the next refresh retries
            self._error("runless_events", f"{type(exc).__name__}: {exc}", source=True)
            return 0

    def _read_one_table(self) -> tuple[int, int]:
        """New records of every type after that type's cursor, in chunks of at most ``batch_size`` per
        type (bounded memory however far behind), each chunk processed in storage-id order."""
        touched: set[str] = set()
        total = 0
        while True:
            chunk, behind = self._read_one_table_chunk()
            for record in chunk:
                run_id = record.event_log_entry.run_id
                if run_id != RUNLESS_RUN_ID:
                    touched.add(run_id)
                self._process(run_id, self._run_for(run_id, record.event_log_entry), record)
            total += len(chunk)
            if chunk:
                self.state.inc(catalog.EXPORTER_EVENTS_PROCESSED, (), len(chunk))
            if not behind:
                break
        for run_id in touched:
            run = self._runs[run_id]
            if run.status in TERMINAL:  # every record of a finished run was stored before its status
                run.step_starts.clear()
                run.placements.clear()
                run.placement_counted.clear()
        return len(touched), total

    def _read_one_table_chunk(self) -> tuple[list[EventLogRecord], bool]:
        """Up to ``batch_size`` new records per type, cut at the lowest id where a type was cut, so
        that no record is processed before an older record of another type (a step's start)."""
        storage = self.instance.event_log_storage
        read: dict[DagsterEventType, list[EventLogRecord]] = {}
        cuts: list[int] = []
        failed = False
        for kind in EVENT_TYPES:
            cursor = self._type_cursors[kind]
            try:
                records = list(
                    storage.get_event_records(
                        EventRecordsFilter(event_type=kind, after_cursor=cursor),
                        limit=self._batch_size,
                        ascending=True,
                    )
                )
            except Exception as exc:
                # Nothing newer than this type's cursor is processed; the next refresh retries.
                where = f"{kind.value} after storage id {cursor}"
                self._error("events", f"{where}: {type(exc).__name__}: {exc}", source=True)
                records, failed = [], True
                cuts.append(cursor or 0)
            read[kind] = records
            if len(records) == self._batch_size:
                cuts.append(records[-1].storage_id)
        bound = min(cuts) if cuts else None
        chunk: list[EventLogRecord] = []
        for kind, records in read.items():
            kept = records if bound is None else [r for r in records if r.storage_id <= bound]
            chunk.extend(kept)
            if bound is not None:
                self._type_cursors[kind] = max(bound, self._type_cursors[kind] or -1)
            elif records:
                self._type_cursors[kind] = records[-1].storage_id
        chunk.sort(key=lambda r: r.storage_id)
        behind = not failed and any(len(r) == self._batch_size for r in read.values())
        return chunk, behind

    def _run_for(self, run_id: str, entry: EventLogEntry) -> _Run:
        if run_id == RUNLESS_RUN_ID:
            return self._runless
        run = self._runs.get(run_id)
        if run is None:  # created after the run table was read: its status comes at the next refresh
            run = self._runs[run_id] = _Run(
                job=entry.job_name or "", status=DagsterRunStatus.NOT_STARTED, updated_at=0.0
            )
        return run

    def _read_records(self, run_id: str, run: _Run) -> int:
        read = 0
        while True:
            connection = self.instance.get_records_for_run(
                run_id, cursor=run.cursor, of_type=set(EVENT_TYPES), limit=self._batch_size
            )
            for record in connection.records:
                self._process(run_id, run, record)
            read += len(connection.records)
            run.cursor = connection.cursor
            if not connection.has_more:
                break
        if read:
            self.state.inc(catalog.EXPORTER_EVENTS_PROCESSED, (), read)
        return read

    # -- one record -------------------------------------------------------------------------------

    def _process(self, run_id: str, run: _Run, record: EventLogRecord) -> None:
        entry = record.event_log_entry
        try:
            self._apply(run, entry)
        except MetadataError as exc:
            self._error(exc.kind, f"run {run_id!r}, record {record.storage_id} ({_describe(entry)}): {exc}")
        except Exception as exc:
            where = f"run {run_id!r}, record {record.storage_id} ({_describe(entry)})"
            self._error("record", f"{where}: {type(exc).__name__}: {exc}")

    def _apply(self, run: _Run, entry: EventLogEntry) -> None:
        event = entry.dagster_event
        if event is None:
            return
        kind = event.event_type
        if kind == DagsterEventType.STEP_START:
            run.step_starts[entry.step_key] = entry.timestamp
            self._count_placement(run, entry.step_key)
        elif kind in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
            self._step_finished(run, entry)
        elif kind == DagsterEventType.ENGINE_EVENT:
            self._engine_event(run, entry)
        elif kind == DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.step_materialization_data.materialization
            self._materialization(
                materialization.asset_key, unwrap_metadata(materialization.metadata), entry.timestamp
            )
        elif kind == DagsterEventType.ASSET_OBSERVATION:
            observation = event.asset_observation_data.asset_observation
            self._observation(observation.asset_key, unwrap_metadata(observation.metadata), entry.timestamp)
        elif kind == DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            self.state.set_latest(
                catalog.ASSET_CHECK_PASSED,
                (evaluation.asset_key.to_user_string(), evaluation.check_name),
                1.0 if evaluation.passed else 0.0,
                entry.timestamp,
            )
        elif kind == DagsterEventType.RUN_FAILURE:
            self.state.inc(catalog.RUN_FAILURES, (run.job,))
        elif kind == DagsterEventType.FRESHNESS_STATE_CHANGE:
            self._freshness_keys.add(event.event_specific_data.key)

    def _step_finished(self, run: _Run, entry: EventLogEntry) -> None:
        step = entry.step_key
        started = run.step_starts.pop(step, None)
        if started is not None:
            duration = max(entry.timestamp - started, 0.0)
        elif entry.dagster_event.event_type == DagsterEventType.STEP_SUCCESS:
            duration = entry.dagster_event.event_specific_data.duration_ms / 1000.0
        else:
            return  # a step that failed before it started (e.g. upstream output missing): no duration
        self.state.observe(catalog.STEP_DURATION, (run.job, step), duration)
        placement = run.placements.pop(step, None)
        run.placement_counted.discard(step)  # a retry of the step is placed (and counted) again
        if placement is not None and placement.gpus:
            self.state.inc(catalog.GPU_SECONDS, (placement.site,), placement.gpus * duration)

    def _engine_event(self, run: _Run, entry: EventLogEntry) -> None:
        data = entry.dagster_event.event_specific_data
        metadata = getattr(data, "metadata", None) or {}
        placement = event_metadata.placement_from_engine_event(unwrap_metadata(metadata))
        if placement is None:
            return
        if not entry.step_key:
            raise MetadataError("placement_metadata", "placement event without a step key: step not counted")
        # A step resubmitted to the cloud is placed twice before it starts: the last placement is where it
        # runs, so it is counted (and its GPUs billed) there, once.
        run.placements[entry.step_key] = placement
        if entry.step_key in run.step_starts:
            # Single-cluster mode records the placement once the pod is bound, possibly after the start.
            self._count_placement(run, entry.step_key)

    def _count_placement(self, run: _Run, step: str) -> None:
        placement = run.placements.get(step)
        if placement is None or step in run.placement_counted:
            return
        run.placement_counted.add(step)
        self.state.inc(catalog.STEP_PLACEMENTS, (placement.site,))

    def _materialization(self, asset_key, metadata: dict[str, Any], timestamp: float) -> None:
        asset = asset_key.to_user_string()
        self.state.set_latest(catalog.ASSET_LAST_MATERIALIZATION, (asset,), timestamp, timestamp)
        name = asset_key.path[-1]
        rows = event_metadata.readiness_rows_from_metadata(metadata)
        if rows is not None:
            self._readiness_rows(asset, rows, timestamp)
        if name == event_metadata.RAW_TELEMETRY:
            packets = event_metadata.packets_from_raw_telemetry(metadata)
            for outcome, count in packets.by_outcome.items():
                self.state.inc(catalog.PACKETS, (outcome,), count)
            for reason, count in packets.quarantined_by_reason.items():
                self.state.inc(catalog.PACKETS_QUARANTINED, (reason,), count)
        elif name == event_metadata.MODEL_EVALUATION:
            # Both parsed before either is kept; no margin (an evaluation older than it) clears the series.
            values = event_metadata.model_metrics_from_evaluation(metadata)
            margin = event_metadata.baseline_margin_from_evaluation(metadata)
            self.state.replace_if_newer(catalog.MODEL_METRIC, values, timestamp)
            self.state.replace_if_newer(catalog.MODEL_BASELINE_MARGIN, margin, timestamp)
        elif name == event_metadata.CHAMPION_MODEL:
            self.state.inc(catalog.PROMOTIONS, (event_metadata.promotion_outcome(metadata),))
            if champion := event_metadata.champion_metrics_from_promotion(metadata):
                current = {
                    (role, metric): value
                    for role in event_metadata.MODEL_ROLES
                    for metric in catalog.MODEL_METRICS
                    if (value := self.state.value(catalog.MODEL_METRIC, (role, metric))) is not None
                }
                merged = event_metadata.with_champion_metrics(current, champion)
                self.state.replace_if_newer(catalog.MODEL_METRIC, merged, timestamp)
        elif name == event_metadata.INFRASTRUCTURE_READINESS:
            ready = event_metadata.readiness_from_metadata(metadata)
            values = {(component,): 1.0 if ok else 0.0 for component, ok in ready.items()}
            self.state.replace_if_newer(catalog.READINESS_READY, values, timestamp)
        elif name == event_metadata.UPLINK_PACKAGE:
            latency = event_metadata.data_to_model_latency(metadata)
            if latency is not None:
                self.state.observe(catalog.DATA_TO_MODEL_LATENCY, (), latency)

    def _readiness_rows(self, asset: str, rows: list[tuple[str, str, str]], timestamp: float) -> None:
        """Keep each readiness asset's latest rows; the status family is their union (one-hot per row)."""
        previous = self._readiness.get(asset)
        if previous is not None and previous[0] > timestamp:
            return
        self._readiness[asset] = (timestamp, rows)
        status: dict[tuple[str, ...], float] = {}
        checked: dict[tuple[str, ...], float] = {}
        for seen_at, asset_rows in self._readiness.values():
            for component, site, current in asset_rows:
                for value in catalog.READINESS_STATUSES:
                    status[(component, site, value)] = 1.0 if value == current else 0.0
                checked[(site,)] = max(checked.get((site,), 0.0), seen_at)
        self.state.replace(catalog.READINESS_STATUS, status)
        self.state.replace(catalog.READINESS_CHECKED, checked)

    def _observation(self, asset_key, metadata: dict[str, Any], timestamp: float) -> None:
        if asset_key.path[-1] != event_metadata.ASTEROID_FEATURES:
            return
        drift = event_metadata.drift_from_observation(metadata)
        if drift is None:
            return
        for spec, value in (
            (catalog.DRIFT_MAX_PSI, drift.max_psi),
            (catalog.DRIFT_FEATURES_OVER_THRESHOLD, drift.features_over_threshold),
            (catalog.DRIFT_CLASS_MIX_SHIFT, drift.class_mix_shift),
            (catalog.DRIFT_DETECTED, None if drift.detected is None else float(drift.detected)),
        ):
            if value is not None:
                self.state.set_latest(spec, (), value, timestamp)

    # -- gauges recomputed on every refresh -------------------------------------------------------

    def _refresh_queued_age(self) -> None:
        queued = RunsFilter(statuses=[DagsterRunStatus.QUEUED])
        oldest = self.instance.get_run_records(queued, limit=1, order_by="create_timestamp", ascending=True)
        age = max(self._clock() - oldest[0].create_timestamp.timestamp(), 0.0) if oldest else 0.0
        self.state.replace(catalog.QUEUED_RUN_OLDEST_AGE, {(): age})

    def _refresh_started_age(self) -> None:
        """Per job, how long its oldest still-STARTED run has been running (a hung run holds its pool slots
        and concurrency; 0 for jobs with no STARTED run)."""
        now = self._clock()
        started = self.instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.STARTED]))
        ages = dict.fromkeys({run.job for run in self._runs.values() if run.job}, 0.0)
        for record in started:
            since = record.start_time or record.create_timestamp.timestamp()
            job = record.dagster_run.job_name
            ages[job] = max(ages.get(job, 0.0), max(now - since, 0.0))
        self.state.replace(catalog.STARTED_RUN_OLDEST_AGE, {(job,): age for job, age in ages.items()})

    def _refresh_freshness(self) -> None:
        """State of every asset the freshness daemon reported on, when that state began, and which assets
        with events the daemon never evaluated (its records cover every asset of the code it loaded,
        NOT_APPLICABLE for those without a policy)."""
        with_events = set(self.instance.get_asset_keys())
        keys = with_events | self._freshness_keys
        records = self.instance.get_freshness_state_records(sorted(keys, key=str)) if keys else {}
        states: dict[tuple[str, ...], float] = {}
        since: dict[tuple[str, ...], float] = {}
        for key, record in records.items():
            state = record.freshness_state.value
            if state not in catalog.FRESHNESS_STATES:
                continue  # NOT_APPLICABLE: the asset has no freshness policy (any more)
            asset = key.to_user_string()
            for candidate in catalog.FRESHNESS_STATES:
                states[(asset, candidate)] = 1.0 if candidate == state else 0.0
            since[(asset,)] = record.updated_at.timestamp()
        evaluated = {(key.to_user_string(),): 1.0 if key in records else 0.0 for key in keys}
        self.state.replace(catalog.ASSET_FRESHNESS_STATE, states)
        self.state.replace(catalog.ASSET_FRESHNESS_STATE_TIMESTAMP, since)
        self.state.replace(catalog.ASSET_FRESHNESS_EVALUATED, evaluated)

    def _refresh_instigators(self) -> None:
        statuses: dict[tuple[str, ...], float] = {}
        timestamps: dict[tuple[str, ...], float] = {}
        failed: dict[tuple[str, ...], float] = {}
        since = self._clock() - FAILED_TICKS_WINDOW_S
        for instigator in self.instance.all_instigator_state():
            kind = instigator.instigator_type.value.lower()
            if kind not in catalog.INSTIGATOR_TYPES:
                continue
            ticks = self.instance.get_ticks(instigator.instigator_origin_id, instigator.selector_id, limit=1)
            if not ticks:
                continue
            tick, name = ticks[0], instigator.instigator_name
            for status in catalog.TICK_STATUSES:
                statuses[(name, kind, status)] = 1.0 if tick.status.value == status else 0.0
            timestamps[(name, kind)] = tick.timestamp
            recent_failures = self.instance.get_ticks(
                instigator.instigator_origin_id,
                instigator.selector_id,
                after=since,
                statuses=[TickStatus.FAILURE],
            )
            failed[(name, kind)] = float(len(recent_failures))
        self.state.replace(catalog.INSTIGATOR_LAST_TICK_STATUS, statuses)
        self.state.replace(catalog.INSTIGATOR_LAST_TICK_TIMESTAMP, timestamps)
        self.state.replace(catalog.INSTIGATOR_FAILED_TICKS_1H, failed)

    def _refresh_daemons(self) -> None:
        now = self._clock()
        heartbeats = self.instance.get_daemon_heartbeats()
        self.state.replace(
            catalog.DAEMON_HEARTBEAT_AGE,
            {(daemon,): max(now - beat.timestamp, 0.0) for daemon, beat in heartbeats.items()},
        )


def _describe(entry: EventLogEntry) -> str:
    kind = entry.dagster_event_type.value if entry.dagster_event_type else "log"
    step = f", step {entry.step_key}" if entry.step_key else ""
    return f"{kind}{step}"
