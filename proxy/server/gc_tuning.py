"""The cyclic garbage collector tuned for a server that keeps big pages in memory (issue 9).

A merged page of 20k files is some 80k objects the collector tracks. With its default
thresholds a full collection runs every few such pages and walks every object held: 100 to
150 ms with a few big pages in memory, during which the event loop answers nothing. The
pages hold no reference cycles (they are freed by reference counting), so scanning them
finds nothing. Two things keep the collector for what it is for:

* what start-up made (modules, classes, the configuration) is moved out of its sight
  (`gc.freeze`): it lives as long as the process;
* it runs after 50k new objects rather than 700, and a full pass after 100 second-generation
  ones rather than 10, so a cold page costs a couple of young passes and no full one. Cyclic
  garbage still goes, in bigger, rarer batches (a few MB at most).
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000
MIDDLE_THRESHOLD = 20
OLD_THRESHOLD = 100


def tune_for_serving() -> None:
    """Call once the server is set up, before it serves."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)
