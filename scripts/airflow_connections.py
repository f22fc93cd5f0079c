"""Create Airflow connections in the metadata DB unless they exist (run by scripts/stack.py with its environment).

Reads ``{conn_id: connection JSON}`` on stdin; prints ``{conn_id: "created" | "kept"}`` as the last line.
A connection a user saved in the UI is kept as it is: that is the point of storing them in the DB.
"""

from __future__ import annotations

import json
import sys

from airflow.models import Connection
from airflow.utils.session import create_session


def main() -> int:
    wanted = json.load(sys.stdin)
    result = {}
    with create_session() as session:
        for conn_id, spec in wanted.items():
            if session.query(Connection).filter(Connection.conn_id == conn_id).first() is not None:
                result[conn_id] = "kept"
                continue
            conn = Connection.from_json(json.dumps(spec), conn_id=conn_id)
            session.add(conn)
            result[conn_id] = "created"
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
