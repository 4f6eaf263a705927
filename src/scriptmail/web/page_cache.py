"""Blocks of the customer area's pages, rendered once and served again while what they show stays
the same (the Scripts e-mail page polled by its owner, a dashboard left open).

Each block is kept under a key (the hosting first, then the language and the block's name) with
a stamp: the figures it was drawn from, read from the store on every view. A block is served
only while its stamp is equal, so a change made by any process or node (an action, a counter
that moved) shows on the very next view; no notice has to arrive for that. Bounded in entries
and in characters, least recently used first out.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

MAX_ENTRIES = 4096
MAX_CHARS = 16_000_000  # about 16 MB of text (a page's blocks are 50-150 kB): a process stays small


class PageCache:
    """Rendered blocks by key, each valid for one stamp; safe to use from the store's worker threads."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_chars: int = MAX_CHARS) -> None:
        self._max_entries = max_entries
        self._max_chars = max_chars
        self._entries: OrderedDict[tuple, tuple[Hashable, Any, int]] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()

    def get(self, key: tuple, stamp: Hashable) -> Any | None:
        """The block kept under `key` if it was rendered from `stamp`; None otherwise."""
        with self._lock:
            found = self._entries.get(key)
            if found is None or found[0] != stamp:
                return None
            self._entries.move_to_end(key)
            return found[1]

    def put(self, key: tuple, stamp: Hashable, value: Any, size: int) -> None:
        """Keep `value` (about `size` characters) for `stamp`, in place of what `key` held."""
        if size > self._max_chars:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._chars -= old[2]
            self._entries[key] = (stamp, value, size)
            self._chars += size
            while len(self._entries) > self._max_entries or self._chars > self._max_chars:
                _, (_, _, dropped) = self._entries.popitem(last=False)
                self._chars -= dropped

    def forget(self, hosting_id: int) -> None:
        """Drop every block of one hosting (after its owner acted on it here)."""
        with self._lock:
            for key in [key for key in self._entries if key[0] == hosting_id]:
                self._chars -= self._entries.pop(key)[2]

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def chars(self) -> int:
        return self._chars
