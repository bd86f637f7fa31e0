"""Settings → the provider and the sinks the feed runs (``BOURSE_MARKETDATA_PROVIDER``,
``BOURSE_MARKETDATA_SINKS``; see ``workers.marketdata.providers``). Apart from the interface
module so that the providers (which import the interface) are imported here, not by it."""

from __future__ import annotations

import importlib

from bourse.settings import Settings
from workers.marketdata.providers import PriceProvider, SinkContext, TickSink
from workers.marketdata.replay import ReplayProvider
from workers.marketdata.synthetic import SyntheticProvider
from workers.marketdata.vendor import AlpacaProvider


def import_object(path: str) -> object:
    """``package.module:name`` or ``package.module.name`` → the object."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ValueError(f"not a dotted path: {path!r}")
    obj: object = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def load_provider(settings: Settings) -> PriceProvider:
    """The provider the settings name (see the module docstring)."""
    name = settings.marketdata_provider.strip()
    if name == "synthetic":
        return SyntheticProvider.from_settings(settings)
    if name == "replay":
        return ReplayProvider.from_settings(settings)
    if name == "alpaca":
        return AlpacaProvider.from_settings(settings)
    factory = import_object(name)
    if not callable(factory):
        raise TypeError(f"{name} is not callable")
    provider = factory(settings)
    if not isinstance(provider, PriceProvider):
        raise TypeError(f"{name} did not return a PriceProvider (no ticks method)")
    return provider


def load_sinks(settings: Settings, context: SinkContext) -> list[TickSink]:
    sinks: list[TickSink] = []
    for path in settings.marketdata_sinks:
        factory = import_object(path)
        if not callable(factory):
            raise TypeError(f"{path} is not callable")
        sinks.append(factory(context))
    return sinks
