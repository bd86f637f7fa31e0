"""Market data: price providers, the live feed, and the hooks candles hang on.

- ``providers``: the ``PriceProvider`` protocol (an async stream of ``Tick``), the ``TickSink``
  hook (every tick and venue trade, for candles), and how a provider is chosen by setting.
- ``synthetic``: geometric Brownian motion per asset, seeded (the default provider).
- ``replay``: ticks or bars from CSV files (``data/sample_ticks.csv`` ships as a sample).
- ``vendor``: a real vendor, Alpaca's market-data websocket stream (``alpaca``).
- ``feed``: the process (``python -m workers.marketdata``) turning ticks and venue trades into
  quotes, reference prices on the matching shards, and stored reference prices.
"""
