"""The FIX 4.4 order-entry gateway (``python -m workers.fix``): see ``gateway.py``."""
