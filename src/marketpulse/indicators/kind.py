"""What an indicator kind is: its parameters, outputs, state layout and kernel.

A *kind* (``ema``, ``bbands``, ``adx``) is a recurrence over closed bars; an
*instance* is a kind with its parameters and output names, declared by a user
(``ema(50)``, ``bb=bbands(20, 2.5)``; see :mod:`~marketpulse.indicators.declare`).

Every kind's kernel is a numba function with one signature::

    kernel(keys, x, open_, high, low, close, volume, pv, session,
           params, fs, ints, ring, out, col)

* ``keys`` int64 (n,): the state row of each bar; a key's bars come in time
  order, keys interleave freely.
* ``x`` float64 (n,): the instance's source series (its ``source`` parameter,
  the close by default); kinds without a source ignore it.
* ``open_ .. volume`` float64 (n,): the bars; ``pv`` the sum of price * size
  of each bar's trades; ``session`` int64 (n,) each bar's session.
* ``params`` float64 (p,): the numeric parameters, in declaration order (the
  ``source`` parameter is resolved into ``x`` and is not among them).
* ``fs`` float64 (capacity, F), ``ints`` int64 (capacity, I), ``ring``
  float64 (capacity, R): the key's state, updated in place. A row of zeros is
  an empty series, so a new key needs no set-up. ``ints[k, 0]`` counts the
  key's bars, by convention.
* ``out`` float64 (n, columns): the kernel writes its outputs to
  ``out[r, col + j]``, NaN where not warmed up.

A kernel must give bit-identical results however a key's bars are split into
calls, which holds when everything it carries from bar to bar is in its state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from marketpulse.numba_blas import defer_blas_check

defer_blas_check()

__all__ = ["SOURCES", "Kind", "Param", "ema_step", "fma"]

#: Series a ``source`` parameter may name.
SOURCES: tuple[str, ...] = ("close", "open", "high", "low", "volume", "hl2", "hlc3")

NAN = np.nan


@dataclass(frozen=True)
class Param:
    """One parameter of a kind.

    Attributes:
        name: its name, as written in ``key=value`` declarations.
        default: its value when not given; ``None`` makes it required.
        integer: whether it takes whole numbers only (periods).
        minimum: the smallest value allowed (inclusive).
        maximum: the largest value allowed (inclusive), if any.
        source: whether it names a series of :data:`SOURCES` instead of a number.
        talib_default: TA-Lib's default where MarketPulse's differs (the
            default set's period: ``sma`` and ``bbands`` of 20, not 30 and 5).
    """

    name: str
    default: float | str | None = None
    integer: bool = True
    minimum: float = 1
    maximum: float | None = None
    source: bool = False
    talib_default: float | None = None


@dataclass(frozen=True)
class Kind:
    """An indicator kind.

    Attributes:
        name: the name declarations use (lower case).
        summary: one line for ``marketpulse indicators`` and the docs.
        params: its parameters, in positional order.
        outputs: the suffix of each output column; ``""`` is the instance's
            name itself, ``"signal"`` gives ``NAME_signal``.
        layout: ``(floats, ints, ring)`` widths of a key's state for the given
            numeric parameters.
        kernel: the numba kernel (signature in the module docstring).
        talib: the TA-Lib function it equals, if TA-Lib has one.
        reference: for kinds TA-Lib lacks, where the formula is published.
    """

    name: str
    summary: str
    params: tuple[Param, ...]
    outputs: tuple[str, ...]
    layout: Callable[[tuple[float, ...]], tuple[int, int, int]] = field(repr=False)
    kernel: Callable[..., None] = field(repr=False)
    talib: str | None = None
    reference: str | None = None


@intrinsic
def fma(typingctx, a, b, c):
    """Return ``a * b + c`` rounded once (LLVM's ``llvm.fma.f64``)."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        f64 = ir.DoubleType()
        fn = builder.module.declare_intrinsic("llvm.fma", [f64], ir.FunctionType(f64, [f64] * 3))
        return builder.call(fn, args)

    return sig, codegen


@numba.njit(cache=True, inline="always")
def ema_step(state, x, c, first, period, k):
    """Advance an EMA (TA-Lib's) whose seed is the mean of inputs ``first .. first+period-1``.

    ``state`` is the running seed sum until the seed bar, the EMA after it.
    Returns the new state and the EMA at bar ``c`` (NaN before the seed bar).
    """
    last = first + period - 1
    if c < first:
        return state, NAN
    if c < last:
        return state + x, NAN
    value = (state + x) / period if c == last else fma(x - state, k, state)
    return value, value
