"""The pure matching core: no I/O, no clock, no randomness, no imports from the project.

``Engine`` applies commands and returns events (tuples, see ``events.EVENT_FIELDS``);
``dump_engine`` / ``load_engine`` turn its state into plain data and back.
"""

from .book import AssetConfig, Book
from .constants import *  # noqa: F403
from .engine import DEFAULT_DEDUP_WINDOW, Engine
from .events import EVENT_FIELDS, Event, event_dict
from .order import Level, Order
from .snapshot import dump_engine, load_engine

__all__ = [
    "DEFAULT_DEDUP_WINDOW",
    "EVENT_FIELDS",
    "AssetConfig",
    "Book",
    "Engine",
    "Event",
    "Level",
    "Order",
    "dump_engine",
    "event_dict",
    "load_engine",
]
