"""A partition's symbol ids: :meth:`PartitionState.lookup_codes` over polls of one dictionary."""

import numpy as np

from marketpulse.stream import Processor, ProcessorSettings


def state(**limit):
    settings = ProcessorSettings(intervals=("1s",), idle_timeout=None, **limit)
    return Processor(settings).state("ticks", 0)


def codes(*values):
    return np.array(values, np.int64)


def test_ids_follow_first_use_when_polls_repeat_one_dictionary():
    """A poll's dictionary names every partition's symbols; this partition uses some. A
    name it did not use before gets its id when first used, however often the same
    dictionary was mapped already."""
    partition = state()
    names = ["X", "A", "Y", "B"]
    assert partition.lookup_codes(names, codes(1, 3, 1)).tolist() == [0, 1, 0]
    assert partition.lookup_codes(list(names), codes(3, 1)).tolist() == [1, 0]
    assert partition.lookup_codes(list(names), codes(2, 1, 0)).tolist() == [2, 0, 3]
    assert partition.lookup_codes(list(names), codes(0, 2, 3)).tolist() == [3, 2, 1]
    assert list(partition.sids) == ["A", "B", "Y", "X"]
    assert partition.names.tolist() == ["A", "B", "Y", "X"]


def test_another_dictionary_maps_by_name_not_by_code():
    partition = state()
    assert partition.lookup_codes(["A", "B"], codes(0, 1)).tolist() == [0, 1]
    assert partition.lookup_codes(["B", "A"], codes(0, 1, 0)).tolist() == [1, 0, 1]
    assert partition.lookup_codes(["C", "A"], codes(1, 0)).tolist() == [0, 2]


def test_a_symbol_beyond_the_limit_stays_refused_poll_after_poll():
    partition = state(max_symbols=1)
    names = ["A", "B"]
    assert partition.lookup_codes(names, codes(0, 1)).tolist() == [0, -1]
    assert partition.lookup_codes(list(names), codes(1, 0, 1)).tolist() == [-1, 0, -1]
    assert list(partition.sids) == ["A"]
