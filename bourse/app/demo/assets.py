"""The demo universe: well-known US stocks and ETFs plus a few 24/7 crypto pairs.

Reference prices are plausible late-2026 levels, used as the synthetic feed's starting points;
`previous_close` starts equal to them. Annual volatility feeds the synthetic feed's GBM.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from models.assets import AssetClass, NewAsset


@dataclass(frozen=True, slots=True)
class DemoAsset:
    symbol: str
    name: str
    asset_class: AssetClass
    price: str
    volatility: float  # annualised, for the synthetic feed
    tick: str = "0.01"


E, F, C = AssetClass.EQUITY, AssetClass.ETF, AssetClass.CRYPTO

DEMO_ASSETS: tuple[DemoAsset, ...] = (
    DemoAsset("AAPL", "Apple Inc.", E, "232.50", 0.25),
    DemoAsset("MSFT", "Microsoft Corporation", E, "425.10", 0.24),
    DemoAsset("NVDA", "NVIDIA Corporation", E, "141.20", 0.50),
    DemoAsset("AMZN", "Amazon.com, Inc.", E, "205.80", 0.32),
    DemoAsset("GOOGL", "Alphabet Inc. Class A", E, "176.40", 0.30),
    DemoAsset("META", "Meta Platforms, Inc.", E, "581.00", 0.38),
    DemoAsset("TSLA", "Tesla, Inc.", E, "342.30", 0.60),
    DemoAsset("BRK.B", "Berkshire Hathaway Inc. Class B", E, "471.90", 0.16),
    DemoAsset("JPM", "JPMorgan Chase & Co.", E, "241.60", 0.22),
    DemoAsset("V", "Visa Inc.", E, "311.20", 0.20),
    DemoAsset("MA", "Mastercard Incorporated", E, "522.70", 0.21),
    DemoAsset("JNJ", "Johnson & Johnson", E, "155.30", 0.16),
    DemoAsset("UNH", "UnitedHealth Group Incorporated", E, "512.40", 0.28),
    DemoAsset("WMT", "Walmart Inc.", E, "90.15", 0.18),
    DemoAsset("PG", "The Procter & Gamble Company", E, "170.25", 0.15),
    DemoAsset("HD", "The Home Depot, Inc.", E, "410.80", 0.22),
    DemoAsset("COST", "Costco Wholesale Corporation", E, "921.50", 0.20),
    DemoAsset("KO", "The Coca-Cola Company", E, "63.40", 0.14),
    DemoAsset("PEP", "PepsiCo, Inc.", E, "151.10", 0.16),
    DemoAsset("XOM", "Exxon Mobil Corporation", E, "118.60", 0.24),
    DemoAsset("DIS", "The Walt Disney Company", E, "112.90", 0.27),
    DemoAsset("NFLX", "Netflix, Inc.", E, "884.00", 0.36),
    DemoAsset("AMD", "Advanced Micro Devices, Inc.", E, "139.70", 0.48),
    DemoAsset("INTC", "Intel Corporation", E, "22.45", 0.42),
    DemoAsset("CSCO", "Cisco Systems, Inc.", E, "58.30", 0.20),
    DemoAsset("ORCL", "Oracle Corporation", E, "176.90", 0.30),
    DemoAsset("CRM", "Salesforce, Inc.", E, "331.60", 0.32),
    DemoAsset("ADBE", "Adobe Inc.", E, "452.30", 0.30),
    DemoAsset("NKE", "NIKE, Inc.", E, "75.20", 0.30),
    DemoAsset("BA", "The Boeing Company", E, "161.40", 0.35),
    DemoAsset("IBM", "International Business Machines Corporation", E, "221.80", 0.22),
    DemoAsset("SPY", "SPDR S&P 500 ETF Trust", F, "590.40", 0.15),
    DemoAsset("QQQ", "Invesco QQQ Trust", F, "505.70", 0.19),
    DemoAsset("VOO", "Vanguard S&P 500 ETF", F, "542.80", 0.15),
    DemoAsset("VTI", "Vanguard Total Stock Market ETF", F, "296.10", 0.16),
    DemoAsset("IWM", "iShares Russell 2000 ETF", F, "226.30", 0.22),
    DemoAsset("DIA", "SPDR Dow Jones Industrial Average ETF Trust", F, "441.20", 0.14),
    DemoAsset("GLD", "SPDR Gold Shares", F, "245.60", 0.14),
    DemoAsset("BTC-USD", "Bitcoin", C, "91250.00", 0.55),
    DemoAsset("ETH-USD", "Ether", C, "3215.40", 0.70),
    DemoAsset("SOL-USD", "Solana", C, "212.35", 0.90),
    DemoAsset("DOGE-USD", "Dogecoin", C, "0.38120", 1.10, tick="0.00001"),
)


def new_assets() -> list[NewAsset]:
    return [
        NewAsset(
            symbol=a.symbol,
            name=a.name,
            asset_class=a.asset_class,
            currency="USD",
            tick_size=a.tick,
            fractionable=True,
            tradable=True,
            reference_price=a.price,
            volatility=Decimal(str(a.volatility)),
        )
        for a in DEMO_ASSETS
    ]
