"""Operations surface of the sync: read-only queries of the audit store, the Airflow UI page, text reports.

``queries`` and ``text`` are plain Python (used by the command line and the alerts); ``app`` and
``plugin`` build the FastAPI page mounted in Airflow's api-server under ``/sync-monitor``.
Nothing here writes to the audit store.
"""

from __future__ import annotations
