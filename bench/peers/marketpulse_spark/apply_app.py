"""``marketpulse spark`` with its bucket operator in ``applyInPandasWithState``: a bench-only variant.

    python bench/peers/marketpulse_spark/apply_app.py --bootstrap-servers B --checkpoint DIR ...

Takes the arguments of ``marketpulse spark`` and runs that command, the same
session, reader, settings, writer and sinks, with one call swapped: where the
job groups ``ticks`` by bucket into ``transformWithStateInPandas`` with its
:class:`~marketpulse.spark.bucket_operator.BucketOperator`, this runs
``applyInPandasWithState`` with :class:`apply_operator.ApplyOperator` made of
the same settings (its state: the bucket's checkpoint records, whole, in the
``GroupState``). bench/bench_peers.py measures the two side by side.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _apply_in_pandas_with_state(grouped: Any, statefulProcessor: Any, outputStructType: Any,  # noqa: N803 - pyspark's names
                                **_ignored: Any) -> Any:  # fmt: skip
    """Stands in for ``GroupedData.transformWithStateInPandas``: the same bucket, the other API."""
    from apply_operator import STATE_SCHEMA, ApplyOperator

    op = statefulProcessor
    if op.settings.idle_timeout is not None:
        raise SystemExit(
            "apply_app: this variant closes bars by input alone (no timers): give --available-now"
        )
    grouped.session.sparkContext.addPyFile(str(HERE / "apply_operator.py"))  # for the workers
    function = ApplyOperator(op.settings, op.rules, op.prefix, op.store_trades, op.quotes, op.run)
    return grouped.applyInPandasWithState(
        function, outputStructType=outputStructType, stateStructType=STATE_SCHEMA,
        outputMode="append", timeoutConf="NoTimeout",
    )  # fmt: skip


def main() -> None:
    """Run ``marketpulse spark`` with these arguments, the operator in ``applyInPandasWithState``."""
    from pyspark.sql.group import GroupedData

    from marketpulse.cli import main as marketpulse

    GroupedData.transformWithStateInPandas = _apply_in_pandas_with_state  # type: ignore[method-assign]
    sys.argv = ["marketpulse", "spark", *sys.argv[1:]]
    marketpulse()


if __name__ == "__main__":
    main()
