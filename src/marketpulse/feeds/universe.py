"""The simulator's reference universe: real tickers at real levels, in sectors.

Levels are approximate closing prices as of **2024-12-31** (the last close of
2024) and volatilities approximate annualised volatilities of daily returns
around that date, from memory of public quotes: close enough to look right on
a chart, not a data source. Betas are to the US market (SPY), rounded.

Returns follow a factor model, so symbols co-move as real ones do: each
symbol's log return is ``beta * market + loading * sector + idiosyncratic``,
with the market factor at :data:`MARKET_VOL` a year, every sector factor at
:data:`SECTOR_VOL` a year (independent of the market and of each other), and
the idiosyncratic part sized so the total matches the symbol's volatility.

Nothing here depends on the simulator's seed or on how many symbols it runs:
KO always starts near 62.26. Symbols beyond the reference list get synthetic
names, levels and volatilities from a generator with a fixed seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "INDEX_FUNDS",
    "MARKET_VOL",
    "REFERENCE",
    "REFERENCE_DATE",
    "SECTORS",
    "SECTOR_VOL",
    "Universe",
    "universe",
]

#: The date the reference levels are close to (closing prices of that day).
REFERENCE_DATE = "2024-12-31"
#: Annualised volatility of the market factor (SPY's realised volatility in 2024, about 13 %).
MARKET_VOL = 0.13
#: Annualised volatility of each sector factor, beyond the market.
SECTOR_VOL = 0.10
#: Smallest idiosyncratic volatility (index funds still wander a little from their index).
_MIN_IDIO_VOL = 0.02

SECTORS = (
    "Technology",
    "Communication Services",
    "Consumer Discretionary",
    "Consumer Staples",
    "Energy",
    "Financials",
    "Health Care",
    "Industrials",
    "Index",
)

# ticker: (sector, close on 2024-12-31, annualised volatility, beta, sector loading)
# Busiest first (roughly by US share volume). Index funds (:data:`INDEX_FUNDS`)
# load on no sector (QQQ and XLF half on their sector).
REFERENCE: dict[str, tuple[str, float, float, float, float]] = {
    "SPY": ("Index", 586.08, 0.13, 1.00, 0.0),
    "QQQ": ("Technology", 511.23, 0.18, 1.15, 0.5),
    "AAPL": ("Technology", 250.42, 0.22, 1.10, 1.0),
    "TSLA": ("Consumer Discretionary", 403.84, 0.60, 1.80, 1.0),
    "NVDA": ("Technology", 134.29, 0.50, 1.70, 1.0),
    "AMD": ("Technology", 120.79, 0.45, 1.60, 1.0),
    "AMZN": ("Consumer Discretionary", 219.39, 0.30, 1.20, 1.0),
    "MSFT": ("Technology", 421.50, 0.22, 1.00, 1.0),
    "META": ("Communication Services", 585.51, 0.35, 1.30, 1.0),
    "GOOGL": ("Communication Services", 189.30, 0.28, 1.10, 1.0),
    "IWM": ("Index", 220.96, 0.20, 1.20, 0.0),
    "BAC": ("Financials", 43.95, 0.25, 1.20, 1.0),
    "F": ("Consumer Discretionary", 9.90, 0.35, 1.20, 1.0),
    "PLTR": ("Technology", 75.63, 0.70, 2.00, 1.0),
    "INTC": ("Technology", 20.05, 0.50, 1.10, 1.0),
    "T": ("Communication Services", 22.77, 0.20, 0.50, 1.0),
    "XLF": ("Financials", 48.35, 0.15, 1.00, 0.5),
    "SOFI": ("Financials", 15.40, 0.60, 1.80, 1.0),
    "AAL": ("Industrials", 17.43, 0.45, 1.40, 1.0),
    "CCL": ("Consumer Discretionary", 24.92, 0.45, 1.60, 1.0),
    "PFE": ("Health Care", 26.53, 0.25, 0.60, 1.0),
    "C": ("Financials", 70.39, 0.28, 1.30, 1.0),
    "WFC": ("Financials", 70.24, 0.28, 1.10, 1.0),
    "JPM": ("Financials", 239.71, 0.22, 1.00, 1.0),
    "GE": ("Industrials", 166.79, 0.30, 1.10, 1.0),
    "UBER": ("Industrials", 60.32, 0.40, 1.30, 1.0),
    "DIS": ("Communication Services", 111.35, 0.25, 1.00, 1.0),
    "NFLX": ("Communication Services", 891.32, 0.35, 1.20, 1.0),
    "BABA": ("Consumer Discretionary", 84.79, 0.40, 0.80, 1.0),
    "KO": ("Consumer Staples", 62.26, 0.15, 0.50, 1.0),
    "XOM": ("Energy", 107.57, 0.22, 0.80, 1.0),
    "CVX": ("Energy", 144.84, 0.22, 0.80, 1.0),
    "VZ": ("Communication Services", 39.99, 0.20, 0.40, 1.0),
    "CSCO": ("Technology", 59.20, 0.20, 0.90, 1.0),
    "ORCL": ("Technology", 166.64, 0.38, 1.10, 1.0),
    "WMT": ("Consumer Staples", 90.35, 0.18, 0.50, 1.0),
    "BA": ("Industrials", 177.00, 0.35, 1.20, 1.0),
    "MU": ("Technology", 84.16, 0.55, 1.50, 1.0),
    "SNAP": ("Communication Services", 10.77, 0.60, 1.50, 1.0),
    "PYPL": ("Financials", 85.35, 0.35, 1.30, 1.0),
    "SHOP": ("Technology", 106.33, 0.50, 1.80, 1.0),
    "COIN": ("Financials", 248.30, 0.80, 2.50, 1.0),
    "GM": ("Consumer Discretionary", 53.27, 0.33, 1.30, 1.0),
    "NKE": ("Consumer Discretionary", 75.67, 0.30, 1.00, 1.0),
    "SBUX": ("Consumer Discretionary", 91.25, 0.28, 0.90, 1.0),
    "MRNA": ("Health Care", 41.58, 0.60, 1.20, 1.0),
    "JNJ": ("Health Care", 144.62, 0.16, 0.50, 1.0),
    "PG": ("Consumer Staples", 167.65, 0.16, 0.40, 1.0),
    "V": ("Financials", 316.04, 0.18, 0.90, 1.0),
    "MA": ("Financials", 526.57, 0.18, 1.00, 1.0),
    "HD": ("Consumer Discretionary", 388.99, 0.22, 1.00, 1.0),
    "UNH": ("Health Care", 505.86, 0.30, 0.60, 1.0),
    "GS": ("Financials", 572.62, 0.28, 1.30, 1.0),
    "MS": ("Financials", 125.72, 0.28, 1.30, 1.0),
    "IBM": ("Technology", 219.83, 0.25, 0.80, 1.0),
    "AIG": ("Financials", 72.80, 0.25, 1.00, 1.0),
    "KR": ("Consumer Staples", 61.15, 0.22, 0.40, 1.0),
    "TGT": ("Consumer Staples", 135.18, 0.33, 0.90, 1.0),
    "COST": ("Consumer Staples", 916.27, 0.20, 0.80, 1.0),
    "LLY": ("Health Care", 772.00, 0.35, 0.60, 1.0),
    "ABBV": ("Health Care", 177.70, 0.25, 0.60, 1.0),
    "MRK": ("Health Care", 99.48, 0.25, 0.50, 1.0),
    "PEP": ("Consumer Staples", 152.06, 0.17, 0.50, 1.0),
    "MCD": ("Consumer Discretionary", 289.89, 0.18, 0.60, 1.0),
    "ADBE": ("Technology", 444.68, 0.33, 1.20, 1.0),
    "CRM": ("Technology", 334.33, 0.35, 1.20, 1.0),
    "QCOM": ("Technology", 153.62, 0.38, 1.30, 1.0),
    "TXN": ("Technology", 187.51, 0.30, 1.10, 1.0),
    "AVGO": ("Technology", 231.84, 0.50, 1.40, 1.0),
}
#: Seed of the generator for symbols beyond :data:`REFERENCE` (fixed: not the run's seed).
_SYNTHETIC_SEED = 20241231
#: Index funds: their moves are their index's, they get no company news.
INDEX_FUNDS = frozenset({"SPY", "QQQ", "IWM", "XLF"})
_LETTERS = np.array(list("ABCDEFGHIJKLMNOPRSTUVWXYZ"))


@dataclass(frozen=True, slots=True)
class Universe:
    """The simulated symbols, as arrays in symbol order.

    Attributes:
        tickers: symbol names, busiest first.
        sector: index into :data:`SECTORS` of each symbol's sector.
        price: reference level (close of :data:`REFERENCE_DATE`).
        vol: annualised volatility of log returns (the list's, or a little
            more where market, sector and the smallest own part exceed it).
        beta: loading on the market factor.
        loading: loading on the symbol's sector factor.
        idio_vol: annualised volatility of the idiosyncratic part.
        index_fund: whether the symbol is an index fund (no company news).
    """

    tickers: list[str]
    sector: np.ndarray
    price: np.ndarray
    vol: np.ndarray
    beta: np.ndarray
    loading: np.ndarray
    idio_vol: np.ndarray
    index_fund: np.ndarray

    def correlation(self) -> np.ndarray:
        """Return the correlation matrix of the symbols' log returns the model implies."""
        exposure = np.zeros((len(self.tickers), 1 + len(SECTORS)))
        exposure[:, 0] = self.beta * MARKET_VOL
        exposure[np.arange(len(self.tickers)), 1 + self.sector] = self.loading * SECTOR_VOL
        cov = exposure @ exposure.T + np.diag(self.idio_vol**2)
        scale = np.sqrt(np.diag(cov))
        return cov / np.outer(scale, scale)


def universe(count: int) -> Universe:
    """Return the first ``count`` symbols: the reference list, then synthetic ones.

    The same ``count`` always gives the same universe, and a larger ``count``
    extends a smaller one without changing its symbols.
    """
    if count < 1:
        raise ValueError("a universe needs at least one symbol")
    rows = list(REFERENCE.items())[:count]
    names = [name for name, _ in rows]
    sector = [SECTORS.index(row[0]) for _, row in rows]
    price, vol, beta, loading = ([row[i] for _, row in rows] for i in (1, 2, 3, 4))
    index_fund = [name in INDEX_FUNDS for name in names]
    rng = np.random.default_rng(_SYNTHETIC_SEED)
    seen = set(REFERENCE)
    while len(names) < count:  # one symbol at a time: more symbols extend fewer
        name = "".join(_LETTERS[rng.integers(0, len(_LETTERS), rng.choice([3, 4]))])
        level, volatility, market = (
            rng.lognormal(np.log(60.0), 0.9),
            rng.lognormal(np.log(0.35), 0.3),
            rng.uniform(0.6, 1.6),
        )
        if name in seen:
            continue
        seen.add(name)
        names.append(name)
        sector.append((len(names) - len(rows) - 1) % (len(SECTORS) - 1))  # company sectors
        price.append(round(float(np.clip(level, 5.0, 800.0)), 2))
        vol.append(round(float(np.clip(volatility, 0.15, 1.0)), 2))
        beta.append(round(float(market), 2))
        loading.append(1.0)
        index_fund.append(False)
    vol_a = np.array(vol)
    beta_a, loading_a = np.array(beta), np.array(loading)
    common = (beta_a * MARKET_VOL) ** 2 + (loading_a * SECTOR_VOL) ** 2
    idio = np.sqrt(np.maximum(vol_a**2 - common, _MIN_IDIO_VOL**2))
    vol_a = np.sqrt(common + idio**2)  # up from the list's where the factors alone exceed it
    return Universe(
        tickers=names,
        sector=np.array(sector, dtype=np.int64),
        price=np.array(price),
        vol=vol_a,
        beta=beta_a,
        loading=loading_a,
        idio_vol=idio,
        index_fund=np.array(index_fund),
    )
