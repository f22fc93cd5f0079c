"""``[core] hostname_callable`` of the test deployment: both workers run on one machine, so each names itself.

Airflow records this name on every task instance it runs (what a real multi-machine deployment gets from
the machines' own names); the tests read it back to see that both workers ran tasks.
"""

from __future__ import annotations

import os
import socket


def worker_name() -> str:
    return os.environ.get("SYNC_TEST_WORKER_NAME") or socket.getfqdn()
