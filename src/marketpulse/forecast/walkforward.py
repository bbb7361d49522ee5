"""Models trained on the lake, tested walk-forward: no test bar is ever trained on.

Unlike the online models, the walk-forward models learn from a whole training
set at once: ``gbm``, gradient boosting (LightGBM,
https://lightgbm.readthedocs.io), here, and ``lstm``, a recurrent network
(:mod:`marketpulse.forecast.lstm`). They are measured on splits by time over
the bars of one timeframe (all its symbols together), the same splits for
every model:

1. the distinct bar starts, in order, are cut into an initial training share
   (the first half) and ``folds`` consecutive test windows of equal length;
2. each fold trains on the bars whose outcome is known before its test
   window opens: features at bar ``t``, outcome at bar ``t + h`` of the same
   series, and bar ``t + h`` starts strictly before the window's first bar
   (the last ``h`` bars before a window are purged, their outcomes being
   inside it);
3. it predicts every bar of its test window.

Training windows grow (each fold keeps all the earlier bars) and always
precede their test window: there is no look-ahead. A model is a
:data:`Learner`: given a timeframe's :class:`Bars` and the rows to train on,
it returns what forecasts other rows (:class:`Fitted`). gbm's fold fits two
boosters on the features of :data:`~marketpulse.forecast.features.FEATURES`
(``NaN`` where undefined: LightGBM routes missing values itself):

- a classifier of the direction, on the bars that moved (an up move is the
  positive class): its probability of an up move, and its call;
- a regressor of the return in basis points, with an absolute-error loss
  (the score is the mean absolute error, whose minimiser is the median).

LightGBM runs single-threaded and deterministic with the run's seed: the same
bars and seed give the same predictions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from marketpulse.forecast.exceptions import ForecastError
from marketpulse.forecast.features import FEATURES
from marketpulse.forecast.lstm import Network, keras
from marketpulse.forecast.prequential import Record, outcomes

__all__ = ["LEARNERS", "Bars", "Boosters", "Fitted", "Learner", "Prediction", "Split",
           "WalkForward", "lightgbm", "outcome_times", "require", "splits",
           "walk_forward"]  # fmt: skip

#: A model's calls (1, -1, 0), probabilities of an up move and returns, a row each.
Prediction = tuple[np.ndarray, np.ndarray, np.ndarray]

_BP = 10_000.0
#: Bar starts of bars whose outcome is not known (past their series' end): never trained on.
_NEVER = np.iinfo(np.int64).max
#: Boosting rounds (trees per booster).
ROUNDS = 200
#: What every booster is trained with: modest, single-threaded, deterministic.
PARAMS: dict[str, Any] = {
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 50,
    "deterministic": True,
    "num_threads": 1,
    "force_row_wise": True,
    "verbosity": -1,
}


def lightgbm() -> Any:
    """LightGBM's module.

    Raises:
        ForecastError: LightGBM is not installed (the ``ml`` extra).
    """
    try:
        import lightgbm
    except ImportError:
        raise ForecastError("the gbm model needs LightGBM: pip install 'marketpulse[ml]'") from None
    return lightgbm


def require(name: str) -> None:
    """Check that a walk-forward model's library is there.

    The LSTM's are looked for, not imported: JAX starts threads as it is imported,
    and a check that ends in another error (a bad option) must leave none behind.

    Raises:
        ForecastError: it is not installed (one line naming the extra).
    """
    if name == "lstm":
        from importlib.util import find_spec

        if find_spec("keras") is None or find_spec("jax") is None:
            keras()  # its one line
        return
    lightgbm()


@dataclass(frozen=True, slots=True)
class Bars:
    """One timeframe's bars as the walk-forward models see them, at one horizon.

    Attributes:
        x: each row's features (:data:`FEATURES` as columns; ``NaN`` undefined).
        bar_start: each row's bar start, ns since the epoch (UTC).
        spans: the timeframe's series, as (first row, end row, name).
        outcome: each row's return to the close ``h`` bars later (``NaN``: none
            known, or a row of another timeframe).
        outcome_at: each row's outcome bar's start (:func:`outcome_times`).
    """

    x: np.ndarray
    bar_start: np.ndarray
    spans: Sequence[tuple[int, int, str]]
    outcome: np.ndarray
    outcome_at: np.ndarray

    @classmethod
    def of(cls, x: np.ndarray, close: np.ndarray, bar_start: np.ndarray,
           spans: Sequence[tuple[int, int, str]], horizon: int) -> Bars:  # fmt: skip
        """The bars of some series, with their outcomes ``horizon`` bars later."""
        outcome = outcomes(close, [(b, e) for b, e, _ in spans], horizon)
        return cls(x, bar_start, spans, outcome, outcome_times(bar_start, spans, horizon))

    def rows(self) -> np.ndarray:
        """The rows of the series, in order."""
        found = [np.arange(b, e) for b, e, _ in self.spans]
        return np.concatenate(found) if found else np.zeros(0, np.int64)


class Fitted(Protocol):
    """A model trained on some rows of a timeframe's bars."""

    def forecast(self, bars: Bars, rows: np.ndarray) -> Prediction:
        """The calls, probabilities of an up move and returns of some rows."""
        ...


#: Trains a model on some rows of a timeframe's bars (their outcomes known) with a seed.
Learner = Callable[[Bars, np.ndarray, int], Fitted]


@dataclass(frozen=True, slots=True)
class Split:
    """One fold: the rows it trains on and the rows of its test window.

    Attributes:
        train: the training rows (their outcome's bar starts before ``first``).
        test: the test window's rows.
        first: the window's first bar start, ns since the epoch (UTC).
        last: its last bar start.
    """

    train: np.ndarray
    test: np.ndarray
    first: int
    last: int


class Boosters:
    """A direction classifier and a return regressor (either ``None``: nothing to learn)."""

    def __init__(self, direction: Any | None, value: Any | None) -> None:
        self.direction = direction
        self.value = value

    @classmethod
    def fit(cls, x: np.ndarray, outcome: np.ndarray, seed: int) -> Boosters:
        """Train both boosters on rows of features and the returns that followed them."""
        lgb = lightgbm()
        params = PARAMS | {"seed": seed}
        names = list(FEATURES)
        moved = outcome != 0
        direction = None
        if len(np.unique(outcome[moved] > 0)) == 2:  # one class only: nothing to tell apart
            data = lgb.Dataset(x[moved], (outcome[moved] > 0).astype(np.float64),
                               feature_name=names, params={"verbosity": -1})  # fmt: skip
            direction = lgb.train(params | {"objective": "binary"}, data, ROUNDS)
        value = None
        if len(outcome):
            data = lgb.Dataset(x, outcome * _BP, feature_name=names, params={"verbosity": -1})
            value = lgb.train(params | {"objective": "regression_l1"}, data, ROUNDS)
        return cls(direction, value)

    @classmethod
    def train(cls, bars: Bars, rows: np.ndarray, seed: int) -> Boosters:
        """Fit both boosters on some rows of a timeframe's bars (a :data:`Learner`)."""
        return cls.fit(bars.x[rows], bars.outcome[rows], seed)

    def forecast(self, bars: Bars, rows: np.ndarray) -> Prediction:
        """The calls, probabilities and returns of some rows of a timeframe's bars."""
        return self.predict(bars.x[rows])

    def predict(self, x: np.ndarray) -> Prediction:
        """The calls (1, -1, 0), the probabilities of an up move and the returns, per row."""
        n = len(x)
        probability = np.full(n, np.nan)
        value = np.full(n, np.nan)
        if n and self.direction is not None:
            probability = np.asarray(self.direction.predict(x), np.float64)
        if n and self.value is not None:
            value = np.asarray(self.value.predict(x), np.float64) / _BP
        direction = np.where(probability > 0.5, 1, np.where(probability < 0.5, -1, 0))
        return direction.astype(np.int8), probability, value


#: The walk-forward models by name.
LEARNERS: dict[str, Learner] = {"gbm": Boosters.train, "lstm": Network.train}


@dataclass(frozen=True, slots=True)
class WalkForward:
    """The walk-forward predictions of one timeframe at one horizon.

    Attributes:
        record: a row per bar of the frame; the bars outside every test window
            have no prediction (direction 0).
        tested: which rows are in a test window.
        splits: the folds.
    """

    record: Record
    tested: np.ndarray
    splits: list[Split]


def outcome_times(
    bar_start: np.ndarray, spans: Sequence[tuple[int, int, str]], h: int
) -> np.ndarray:
    """Each bar's outcome bar's start (bar ``t + h`` of its series); past any time if none."""
    out = np.full(len(bar_start), _NEVER, np.int64)
    for begin, end, _ in spans:
        if end - begin > h:
            out[begin : end - h] = bar_start[begin + h : end]
    return out


def splits(
    bar_start: np.ndarray,
    outcome_at: np.ndarray,
    rows: np.ndarray,
    folds: int = 5,
    initial: float = 0.5,
) -> list[Split]:
    """The folds over some rows: expanding training sets, consecutive test windows.

    Args:
        bar_start: each row's bar start.
        outcome_at: each row's outcome bar's start (:func:`outcome_times`).
        rows: the rows to split (one timeframe's).
        folds: the number of test windows.
        initial: the share of the distinct bar starts only ever trained on.

    Raises:
        ForecastError: fewer distinct bar starts after the initial share than folds.
    """
    times = np.unique(bar_start[rows])
    rest = times[int(len(times) * initial) :]
    if folds < 1 or len(rest) < folds:
        raise ForecastError(
            f"--folds: {len(times)} bar times are too few for {folds} walk-forward test windows"
        )
    out = []
    for window in np.array_split(rest, folds):
        first = int(window[0])
        test = rows[np.isin(bar_start[rows], window)]
        train = rows[outcome_at[rows] < first]
        out.append(Split(train, test, first, int(window[-1])))
    return out


def walk_forward(
    x: np.ndarray,
    close: np.ndarray,
    bar_start: np.ndarray,
    spans: Sequence[tuple[int, int, str]],
    horizon: int,
    seed: int = 0,
    folds: int = 5,
    learner: Learner = Boosters.train,
) -> WalkForward:
    """Train and test a model fold by fold over the series of one timeframe.

    Args:
        x: each row's features (:data:`FEATURES` as columns).
        close: each row's close.
        bar_start: each row's bar start, ns since the epoch.
        spans: the series of the timeframe, as (first row, end row, name).
        horizon: bars between a prediction's bar and its outcome's.
        seed: the model's seed.
        folds: the number of test windows.
        learner: the model (:data:`LEARNERS`; gbm's boosters unless named).
    """
    n = len(close)
    bars = Bars.of(x, close, bar_start, spans, horizon)
    found = splits(bar_start, bars.outcome_at, bars.rows(), folds)
    direction = np.zeros(n, np.int8)
    probability = np.full(n, np.nan)
    value = np.full(n, np.nan)
    tested = np.zeros(n, bool)
    for split in found:
        d, p, v = learner(bars, split.train, seed).forecast(bars, split.test)
        direction[split.test], probability[split.test], value[split.test] = d, p, v
        tested[split.test] = True
    return WalkForward(Record(direction, probability, value, bars.outcome), tested, found)
