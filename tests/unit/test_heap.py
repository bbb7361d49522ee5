import gc

from marketpulse.runtime.heap import YOUNG_THRESHOLD, settle_heap


def test_settle_heap_freezes_start_up_objects_and_spaces_young_collections_out():
    before = gc.get_threshold()
    try:
        settle_heap()
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
