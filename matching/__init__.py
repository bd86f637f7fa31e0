"""The exchange: a pure order-book core (``matching.core``) and the shard runner that feeds it
from Redis streams (``matching.shard``). See matching/README.md for the command and event
formats, the Redis keys and the recovery protocol.

Importing this package imports nothing else: the core stays free of I/O dependencies.
"""
