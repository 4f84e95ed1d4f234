"""A blob store whose writer is 'killed' part-way: the fault the atomic-write tests inject."""

from __future__ import annotations


class KilledAfterPuts:
    """Wraps a store; the put after the first ``allowed`` ones raises KeyboardInterrupt (as a SIGINT or a
    killed process would stop the writer there), and nothing of that put reaches the store."""

    def __init__(self, store, allowed: int):
        self._store, self._allowed = store, allowed

    def __getattr__(self, name):
        return getattr(self._store, name)

    def put_bytes(self, key, data):
        if self._allowed == 0:
            raise KeyboardInterrupt(f"killed before writing {key}")
        self._allowed -= 1
        self._store.put_bytes(key, data)
