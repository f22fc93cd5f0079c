"""Write claims and run liveness: what keeps two runs that overlap from writing one record twice.

A run claims a record (``sync_claim``: unique entity + key) in one transaction *before* it creates or changes
the record's target document and releases the claim after the outcome and the id map are stored. A second run
(another process, another Celery worker) that reaches the same record finds the claim taken and waits for it
to be released; then it reads the id map again, so it updates or leaves unchanged what the first run created
instead of creating it again. A claim has a lease: the claim of a run that was killed expires and is taken over.

Also here: the heartbeat of a running ``sync_run`` and the closing of runs whose tasks are gone (abandoned).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from fxiaoke_k3cloud.audit._base import StoreBase, chunked, unique_strings
from fxiaoke_k3cloud.audit.schema import RUN_COUNT_COLUMNS, sync_claim, sync_run, sync_stage

log = logging.getLogger(__name__)

#: How long a claim holds without being released or renewed; a load renews its claims on every heartbeat
#: (``renew_claims``), so only a run that went silent (killed, hung) loses them.
CLAIM_LEASE = timedelta(minutes=15)
#: A run of a type Airflow cannot be asked about (re-drive, dependency) counts as gone after this silence.
STALE_AFTER = timedelta(hours=2)
#: Run types that are Airflow DAG runs of the flow's own DAG (their liveness is asked from Airflow).
DAG_RUN_TYPES = ("scheduled", "manual", "backfill", "asset_triggered")


def holder_name(run_pk: int | None) -> str:
    """Who holds a claim: the run and the process (host:pid), for the data team reading ``sync_claim``."""
    return f"run {run_pk} on {socket.gethostname()}:{os.getpid()}"[:250]


def _dead_on_this_host(holder: str) -> bool:
    """True when ``holder`` names a process on this host that no longer exists (killed: its claims are free)."""
    host, _, pid = holder.rpartition(" on ")[2].rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by someone else
        return False
    return False


class ClaimMixin(StoreBase):
    # ---------------------------------------------------------------- claims

    def claim(self, entity: str, keys: Iterable[str], *, holder: str, run: int | None,
              lease: timedelta = CLAIM_LEASE) -> tuple[list[str], dict[str, str]]:
        """Try to claim ``keys`` of ``entity``; returns ``(claimed, held_by_others)``.

        ``claimed`` lists the keys this run now holds (including ones it held already — also from an earlier,
        killed attempt of the same run, i.e. a task retry —, whose lease is renewed); ``held_by_others`` maps
        each other key to its holder. Claims whose lease expired, and claims of a process on this host that no
        longer exists, are taken over. Atomic per key across processes: the unique (entity, key) decides.
        """
        wanted = unique_strings(keys)
        if not wanted:
            return [], {}
        now = self._now()
        claimed: list[str] = []
        others: dict[str, str] = {}
        with self.engine.begin() as conn:
            for part in chunked(wanted):
                conn.execute(sa.delete(sync_claim).where(
                    sync_claim.c.entity == entity, sync_claim.c.key.in_(part), sync_claim.c.expires_at < now))
                dead = {who for (who,) in conn.execute(sa.select(sync_claim.c.holder).distinct().where(
                    sync_claim.c.entity == entity, sync_claim.c.key.in_(part), sync_claim.c.holder != holder))
                    if _dead_on_this_host(who)}
                if dead:
                    conn.execute(sa.delete(sync_claim).where(
                        sync_claim.c.entity == entity, sync_claim.c.key.in_(part), sync_claim.c.holder.in_(dead)))
                ins = self._insert(conn, sync_claim)
                conn.execute(ins.on_conflict_do_nothing(index_elements=[sync_claim.c.entity, sync_claim.c.key]), [
                    {"entity": entity, "key": k, "holder": holder, "run": run, "claimed_at": now,
                     "expires_at": now + lease} for k in part])
                mine = sync_claim.c.holder == holder if run is None else sync_claim.c.run == run
                conn.execute(sa.update(sync_claim).where(
                    sync_claim.c.entity == entity, sync_claim.c.key.in_(part), mine,
                ).values(holder=holder, expires_at=now + lease))
                for key, who in conn.execute(sa.select(sync_claim.c.key, sync_claim.c.holder).where(
                        sync_claim.c.entity == entity, sync_claim.c.key.in_(part))):
                    if who == holder:
                        claimed.append(key)
                    else:
                        others[key] = who
        order = {k: i for i, k in enumerate(wanted)}
        return sorted(claimed, key=order.__getitem__), others

    def release_claims(self, entity: str, keys: Iterable[str], *, holder: str) -> int:
        """Release this holder's claims on ``keys``; returns how many were released."""
        released = 0
        with self.engine.begin() as conn:
            for part in chunked(unique_strings(keys)):
                released += conn.execute(sa.delete(sync_claim).where(
                    sync_claim.c.entity == entity, sync_claim.c.key.in_(part),
                    sync_claim.c.holder == holder)).rowcount
        return released

    def renew_claims(self, entity: str, *, holder: str, run: int | None, lease: timedelta = CLAIM_LEASE) -> int:
        """Push the lease of every claim this run holds on ``entity`` to now + ``lease`` (the load's heartbeat:
        a load that runs longer than one lease keeps its records); returns how many were renewed.

        A claim already taken over by another run (this one was silent past its lease) is not taken back.
        """
        mine = sync_claim.c.holder == holder if run is None else sync_claim.c.run == run
        with self.engine.begin() as conn:
            return conn.execute(sa.update(sync_claim).where(sync_claim.c.entity == entity, mine).values(
                holder=holder, expires_at=self._now() + lease)).rowcount

    def claim_waiting(self, entity: str, keys: Sequence[str], *, holder: str, run: int | None,
                      timeout: float, poll: float = 0.5,
                      sleep: Callable[[float], None] = time.sleep) -> tuple[list[str], dict[str, str]]:
        """Claim ``keys``, waiting up to ``timeout`` seconds for claims other runs hold to be released.

        Call it holding no other claim (a run that waits while it holds claims could deadlock with another).
        Returns what :meth:`claim` returns after the last try.
        """
        deadline = time.monotonic() + timeout
        claimed, others = self.claim(entity, keys, holder=holder, run=run)
        while others and time.monotonic() < deadline:
            sleep(poll)
            more, others = self.claim(entity, list(others), holder=holder, run=run)
            claimed += more
        return claimed, others

    # ---------------------------------------------------------------- liveness

    def heartbeat(self, run_pk: int) -> None:
        """Record that a task of the run is alive now."""
        with self.engine.begin() as conn:
            conn.execute(sa.update(sync_run).where(sync_run.c.id == run_pk).values(heartbeat_at=self._now()))

    def run_status(self, run_pk: int) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sync_run.c.status).where(sync_run.c.id == run_pk)).scalar_one_or_none()

    def close_abandoned(self, flow: str, *, exclude: int | None = None,
                        is_alive: Callable[[str], bool | None] = lambda run_id: None,
                        stale_after: timedelta = STALE_AFTER) -> list[dict[str, Any]]:
        """Close ``flow``'s runs left ``running`` by tasks that are gone; returns the rows closed.

        ``is_alive(run_id)`` answers for the flow's own DAG runs (True: still queued/running in Airflow,
        False: over or unknown to Airflow, None: cannot tell). When it cannot tell, and for run types Airflow
        is not asked about, a run silent (no heartbeat, no start) for longer than ``stale_after`` is gone.
        A closed run gets status ``abandoned``, its counters from the outcomes it had stored and a message
        saying so; its staged rows and its claims are deleted. Staged rows of finished runs go too.
        """
        now = self._now()
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(
                sa.select(sync_run.c.id, sync_run.c.run_id, sync_run.c.run_type, sync_run.c.started_at,
                          sync_run.c.heartbeat_at).where(
                    sync_run.c.flow == flow, sync_run.c.status == "running",
                    *([sync_run.c.id != exclude] if exclude is not None else [])))]
        closed: list[dict[str, Any]] = []
        for row in rows:
            alive = is_alive(row["run_id"]) if row["run_type"] in DAG_RUN_TYPES else None
            if alive is None:
                last = row["heartbeat_at"] or row["started_at"]
                alive = last is not None and now - last < stale_after
            if alive:
                continue
            with self.engine.begin() as conn:
                final = self._final_outcomes(conn, row["id"])  # AuditStore's: last outcome per record
                done = ", ".join(f"{n} {k}" for k, n in sorted(final.items())) or "no record outcome stored"
                message = (f"abandoned: its tasks are gone (Airflow run over or unknown, or silent since "
                           f"{(row['heartbeat_at'] or row['started_at']).isoformat()}); it had stored {done}; "
                           "records without an outcome are read again by the next incremental run")
                values = {k: v for k, v in final.items() if k in RUN_COUNT_COLUMNS}
                result = conn.execute(sa.update(sync_run).where(
                    sync_run.c.id == row["id"], sync_run.c.status == "running").values(
                    status="abandoned", finished_at=now, message=message, **values))
                if result.rowcount != 1:
                    continue  # it finished meanwhile
                conn.execute(sa.delete(sync_stage).where(sync_stage.c.run == row["id"]))
                conn.execute(sa.delete(sync_claim).where(sync_claim.c.run == row["id"]))
            closed.append({**row, "message": message})
        with self.engine.begin() as conn:
            finished = sa.select(sync_run.c.id).where(sync_run.c.flow == flow, sync_run.c.status != "running")
            conn.execute(sa.delete(sync_stage).where(sync_stage.c.run.in_(finished)))
        return closed
