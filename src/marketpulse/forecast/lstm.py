"""An LSTM of the last bars' features (Keras on JAX's CPU backend), trained on the lake.

For a bar ``t`` the network reads the features of its series' last
:attr:`LstmSettings.sequence` bars, ``t`` included (oldest first; zeros, the
training mean, before the series' first bar), through one LSTM layer, and
gives two outputs:

- ``direction``: the probability that the close ``h`` bars later is higher
  (sigmoid, binary cross-entropy, trained on the bars that moved), whose side
  of one half is the call;
- ``value``: the return to that close (linear, absolute-error loss, on the
  return over its mean size in training).

The features (:data:`~marketpulse.forecast.features.FEATURES`) are
standardised with the mean and standard deviation of the training rows only,
clipped to ``±CLIP``, an undefined one set to 0 (the mean). Early stopping
watches the last :attr:`LstmSettings.validation` share of the training rows'
bar times; the rows fitted on end, outcome included, before those begin. The
network is small (16 units, sequences of 16 bars) and its training short (at
most 10 epochs), so that a walk-forward evaluation runs on a CPU in minutes.
The same bars and seed give the same predictions: the seed draws the initial
weights and the shuffles (:func:`keras.utils.set_random_seed`), and JAX's CPU
kernels are deterministic.

Keras and JAX are imported only when an LSTM is asked for (:func:`keras`):
the ``ml`` extra installs them.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from marketpulse.forecast.exceptions import ForecastError
from marketpulse.forecast.features import FEATURES

if TYPE_CHECKING:
    from collections.abc import Sequence

    from marketpulse.forecast.walkforward import Bars

__all__ = ["CLIP", "SETTINGS", "LstmSettings", "Network", "Scaling", "holdout", "keras",
           "sequences"]  # fmt: skip

#: Standardised features are clipped to this many standard deviations.
CLIP = 5.0
_BACKEND = "jax"
#: Rows per prediction step.
_PREDICT_BATCH = 1024
_OUTPUTS = ("direction", "value")


def keras() -> Any:
    """Keras's module, on JAX's CPU backend.

    Raises:
        ForecastError: Keras or JAX is not installed (the ``ml`` extra), or Keras
            was already imported in this process with another backend.
    """
    # Overwritten, not setdefault: MarketPulse installs, pins and tests JAX only, and
    # a KERAS_BACKEND set for other work (tensorflow, torch) would pick a backend that
    # is not installed here, or one whose numbers and determinism were never checked.
    # The same for JAX's platform: the CPU's (no probing for accelerators, no log line
    # about their absence). Both only take effect before the first import of each.
    os.environ["KERAS_BACKEND"] = _BACKEND
    os.environ["JAX_PLATFORMS"] = "cpu"
    try:
        import keras
    except ImportError:
        raise ForecastError(
            "the lstm model needs Keras and JAX: pip install 'marketpulse[ml]'"
        ) from None
    backend = keras.backend.backend()
    if backend != _BACKEND:
        raise ForecastError(
            f"the lstm model runs on Keras's {_BACKEND} backend; Keras was already "
            f"imported with {backend}"
        )
    return keras


def _versions() -> dict[str, str]:
    import jax

    return {"keras": keras().__version__, "jax": jax.__version__}


@dataclass(frozen=True, slots=True)
class LstmSettings:
    """The network's size and training.

    Attributes:
        sequence: bars per input sequence.
        units: the LSTM layer's units.
        epochs: the most passes over the training rows.
        patience: epochs without a better validation loss before stopping.
        batch: rows per gradient step.
        learning_rate: Adam's step size.
        validation: the share of the training rows' bar times held out for early stopping.
    """

    sequence: int = 16
    units: int = 16
    epochs: int = 10
    patience: int = 2
    batch: int = 128
    learning_rate: float = 0.003
    validation: float = 0.2


#: What ``forecast evaluate`` and ``forecast train`` use.
SETTINGS = LstmSettings()


@dataclass(frozen=True, slots=True)
class Scaling:
    """The features' standardisation and the return's scale, from the training rows only.

    Attributes:
        mean: each feature's mean (0 where never defined).
        std: each feature's standard deviation (1 where zero or never defined).
        scale: the training returns' mean absolute size (the value output's unit).
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    scale: float

    @classmethod
    def of(cls, x: np.ndarray, outcome: np.ndarray) -> Scaling:
        """The scaling of some rows of features and the returns that followed them."""
        defined = np.isfinite(x)
        count = defined.sum(axis=0)
        filled = np.where(defined, x, 0.0)
        mean = filled.sum(axis=0) / np.maximum(count, 1)
        var = (np.where(defined, x - mean, 0.0) ** 2).sum(axis=0) / np.maximum(count, 1)
        std = np.sqrt(var)
        std = np.where(std > 0, std, 1.0)
        size = float(np.mean(np.abs(outcome))) if len(outcome) else 0.0
        return cls(tuple(mean.tolist()), tuple(std.tolist()), size if size > 0 else 1.0)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """The features standardised, clipped, undefined ones 0, as float32."""
        z = (x - np.asarray(self.mean)) / np.asarray(self.std)
        return np.clip(np.nan_to_num(z, nan=0.0), -CLIP, CLIP).astype(np.float32)

    def to_json(self) -> bytes:
        """As JSON (keys sorted)."""
        data = {"mean": list(self.mean), "std": list(self.std), "scale": self.scale}
        return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, text: bytes) -> Scaling:
        """From :meth:`to_json`'s text."""
        data = json.loads(text)
        return cls(tuple(data["mean"]), tuple(data["std"]), float(data["scale"]))


def sequences(z: np.ndarray, spans: Sequence[tuple[int, int, str]], rows: np.ndarray,
              length: int) -> np.ndarray:  # fmt: skip
    """Each row's last ``length`` rows of its series, oldest first, zeros before its start.

    Args:
        z: the standardised features, a row per bar of the frame.
        spans: the series, as (first row, end row, name): a sequence never crosses one.
        rows: the rows whose sequences to make (each inside a span).
        length: rows per sequence.
    """
    first = np.zeros(len(z), np.int64)
    for begin, end, _ in spans:
        first[begin:end] = begin
    back = rows[:, None] - np.arange(length - 1, -1, -1)[None, :]
    padded = np.concatenate([z, np.zeros((1, z.shape[1]), z.dtype)])
    back = np.where(back >= first[rows][:, None], back, len(z))  # before the series: zeros
    return padded[back]


class Network:
    """A trained LSTM: its shape, weights, and the scaling of its inputs.

    Args:
        sequence: bars per input sequence.
        units: the LSTM layer's units.
        weights: the Keras model's weights, in its order.
        scaling: the features' standardisation and the return's scale.
    """

    def __init__(self, sequence: int, units: int, weights: Sequence[np.ndarray],
                 scaling: Scaling) -> None:  # fmt: skip
        self.sequence = sequence
        self.units = units
        self.weights = [np.asarray(w) for w in weights]
        self.scaling = scaling

    @classmethod
    def train(cls, bars: Bars, rows: np.ndarray, seed: int,
              settings: LstmSettings = SETTINGS) -> Network:  # fmt: skip
        """Fit a network on some rows of a timeframe's bars (their outcomes known).

        The last ``settings.validation`` share of the rows' bar times is held
        out for early stopping; the rows fitted on are those whose outcome bar
        starts before it (:func:`holdout`).
        """
        k = keras()
        fit, held = holdout(bars, rows, settings.validation)
        scaling = Scaling.of(bars.x[fit], bars.outcome[fit])
        z = scaling.apply(bars.x)
        engine = _Engine.of(k, settings)  # made first: its own weights draw from the seed too
        k.utils.set_random_seed(seed)
        engine.reset(_build(k, settings.sequence, settings.units).get_weights())

        def data(part: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, Any]]:
            outcome = bars.outcome[part]
            targets = {"direction": (outcome > 0).astype(np.float32)[:, None],
                       "value": (outcome / scaling.scale).astype(np.float32)[:, None]}  # fmt: skip
            weights = {"direction": (outcome != 0).astype(np.float32),
                       "value": np.ones(len(part), np.float32)}  # fmt: skip
            return _padded(settings.batch, sequences(z, bars.spans, part, settings.sequence),
                           targets, weights)  # fmt: skip

        model = engine.model
        if len(fit):
            x, y, w = data(fit)
            more: dict[str, Any] = {}
            if len(held):
                more = {"validation_data": data(held), "callbacks": [k.callbacks.EarlyStopping(
                    patience=settings.patience, restore_best_weights=True)]}  # fmt: skip
            k.utils.set_random_seed(seed)  # the shuffles
            model.fit(x, y, sample_weight=w, epochs=settings.epochs, batch_size=settings.batch,
                      shuffle=True, verbose=0, **more)  # fmt: skip
        return cls(settings.sequence, settings.units, model.get_weights(), scaling)

    def forecast(self, bars: Bars, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The calls (1, -1, 0), probabilities of an up move and returns of some rows."""
        z = self.scaling.apply(bars.x)
        return self.predict(sequences(z, bars.spans, rows, self.sequence))

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The calls, probabilities and returns of standardised sequences (:func:`sequences`)."""
        n = len(x)
        model = _predictor(keras(), self.sequence, self.units)
        model.set_weights(self.weights)
        batch = _PREDICT_BATCH
        whole = -(-n // batch) * batch  # one batch shape: compiled once
        padded = np.concatenate([x, np.zeros((whole - n, *x.shape[1:]), x.dtype)])
        out = model.predict(padded, batch_size=batch, verbose=0) if whole else None
        probability = np.zeros(0) if out is None else np.asarray(out["direction"], np.float64)
        value = np.zeros(0) if out is None else np.asarray(out["value"], np.float64)
        probability = probability.reshape(-1)[:n]
        value = value.reshape(-1)[:n] * self.scaling.scale
        direction = np.where(probability > 0.5, 1, np.where(probability < 0.5, -1, 0))
        return direction.astype(np.int8), probability, value

    def digest(self) -> bytes:
        """What the network is, as bytes: its configuration, weights and scaling."""
        config = _build(keras(), self.sequence, self.units).get_config()
        parts = [json.dumps(config, sort_keys=True).encode(), self.scaling.to_json()]
        parts += [np.ascontiguousarray(w).tobytes() for w in self.weights]
        return b"\0".join(parts)

    def to_bytes(self) -> bytes:
        """The Keras model file (``.keras``; it holds the time it was written)."""
        model = _build(keras(), self.sequence, self.units)
        model.set_weights(self.weights)
        with tempfile.TemporaryDirectory(prefix="marketpulse-lstm-") as tmp:
            path = Path(tmp) / "model.keras"
            model.save(path)
            return path.read_bytes()

    @classmethod
    def from_bytes(cls, data: bytes, scaling: Scaling) -> Network:
        """A network from its Keras model file and its scaling.

        Raises:
            ForecastError: the file is not such a network.
        """
        k = keras()
        with tempfile.TemporaryDirectory(prefix="marketpulse-lstm-") as tmp:
            path = Path(tmp) / "model.keras"
            path.write_bytes(data)
            model = k.saving.load_model(path, compile=False)
        try:
            sequence, features = model.input_shape[1:]
            units = model.get_layer("lstm").units
        except (ValueError, AttributeError, TypeError) as e:
            raise ForecastError(f"lstm: not a MarketPulse LSTM model file ({e})") from None
        if features != len(FEATURES):
            raise ForecastError(
                f"lstm: the model file takes {features} features, MarketPulse has {len(FEATURES)}"
            )
        return cls(sequence, units, model.get_weights(), scaling)

    @staticmethod
    def versions() -> dict[str, str]:
        """The versions of Keras and JAX."""
        return _versions()


def holdout(bars: Bars, rows: np.ndarray, share: float) -> tuple[np.ndarray, np.ndarray]:
    """Some training rows cut by time: those fitted on, and the last ``share`` held out.

    The held-out rows are those of the last ``share`` of the rows' distinct bar
    times; the fitted rows are those whose outcome bar starts before the first
    of them, so nothing fitted on has seen a held-out bar. Too few bar times
    to cut: every row fitted on, none held out.
    """
    times = np.unique(bars.bar_start[rows])
    cut = int(len(times) * (1.0 - share))
    if share <= 0 or cut < 1 or cut >= len(times):
        return rows, rows[:0]
    first = times[cut]
    fit = rows[bars.outcome_at[rows] < first]
    held = rows[bars.bar_start[rows] >= first]
    if len(fit) == 0:
        return rows, rows[:0]
    return fit, held


class _Engine:
    """One compiled network per shape and training, reused by every network of it.

    JAX compiles a Keras model's training, validation and prediction steps for
    each new model object, seconds each on a small CPU; a walk-forward run
    trains a network per fold, so the folds share this one. Each training
    starts it afresh: the seed's initial weights and the optimizer's first
    state (its moments zero, its step count 0).
    """

    _made: ClassVar[dict[LstmSettings, _Engine]] = {}

    def __init__(self, model: Any, settings: LstmSettings) -> None:
        self.model = model
        model.optimizer.build(model.trainable_variables)
        self._optimizer = [np.asarray(v.numpy()) for v in model.optimizer.variables]
        # A model's first fit reads its data once more to build itself, drawing one more
        # shuffle from NumPy's generator: done here, on rows of weight 0, every training
        # draws the same shuffles from the same seed, the engine new or not.
        x = np.zeros((settings.batch, settings.sequence, len(FEATURES)), np.float32)
        zeros = {name: np.zeros((settings.batch, 1), np.float32) for name in _OUTPUTS}
        nothing = {name: np.zeros(settings.batch, np.float32) for name in _OUTPUTS}
        model.fit(x, zeros, sample_weight=nothing, batch_size=settings.batch, epochs=1,
                  shuffle=False, verbose=0)  # fmt: skip

    @classmethod
    def of(cls, k: Any, settings: LstmSettings) -> _Engine:
        """The engine of ``settings``, made on first use."""
        engine = cls._made.get(settings)
        if engine is None:
            model = _build(k, settings.sequence, settings.units)
            model.compile(
                optimizer=k.optimizers.Adam(settings.learning_rate),
                loss={"direction": "binary_crossentropy", "value": "mean_absolute_error"},
            )
            engine = cls._made[settings] = cls(model, settings)
        return engine

    def reset(self, weights: Sequence[np.ndarray]) -> None:
        """Start afresh from some initial weights."""
        self.model.set_weights(weights)
        for variable, value in zip(self.model.optimizer.variables, self._optimizer, strict=True):
            variable.assign(value)


def _padded(batch: int, x: np.ndarray, targets: dict[str, np.ndarray],
            weights: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray],
                                                     dict[str, np.ndarray]]:  # fmt: skip
    """Rows of weight 0 added up to whole batches: one batch shape, compiled once."""
    extra = -len(x) % batch

    def pad(a: np.ndarray) -> np.ndarray:
        return np.concatenate([a, np.zeros((extra, *a.shape[1:]), a.dtype)])

    return (pad(x), {k: pad(v) for k, v in targets.items()},
            {k: pad(v) for k, v in weights.items()})  # fmt: skip


_PREDICTORS: dict[tuple[int, int], Any] = {}


def _predictor(k: Any, sequence: int, units: int) -> Any:
    """One network per shape that predicts for every network of it (compiled once)."""
    model = _PREDICTORS.get((sequence, units))
    if model is None:
        model = _PREDICTORS[sequence, units] = _build(k, sequence, units)
    return model


def _build(k: Any, sequence: int, units: int) -> Any:
    """The network; layers named, so that its configuration never carries a counter."""
    inputs = k.Input((sequence, len(FEATURES)), name="bars")
    hidden = k.layers.LSTM(units, name="lstm")(inputs)
    outputs = {
        "direction": k.layers.Dense(1, activation="sigmoid", name="direction")(hidden),
        "value": k.layers.Dense(1, name="value")(hidden),
    }
    return k.Model(inputs, outputs, name="marketpulse_lstm")
