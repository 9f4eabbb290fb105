"""Prometheus metrics: request counters owned here, and figures read at scrape time from the
objects that own them (the file store, the page service).

Each application has its own registry; nothing is global.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True, kw_only=True)
class ScrapeSource:
    """Figures to report, each a zero-argument callable evaluated at scrape time."""

    upstream_requests: Callable[[], Mapping[tuple[str, str], int]]
    upstream_errors: Callable[[], Mapping[str, int]]
    page_hits: Callable[[], int]
    page_misses: Callable[[], int]
    store_figures: Callable[[], Mapping[str, int]]


# (metric type, name, help, key of FileStore.figures()) of the store's own figures.
_STORE_FIGURES: tuple[tuple[type[CounterMetricFamily | GaugeMetricFamily], str, str, str], ...] = (
    (
        CounterMetricFamily,
        "variant_proxy_bytes_from_upstream",
        "File bytes downloaded from upstreams",
        "bytes_from_upstream",
    ),
    (
        GaugeMetricFamily,
        "variant_proxy_downloads_in_flight",
        "File downloads in progress",
        "downloads_in_flight",
    ),
    (GaugeMetricFamily, "variant_proxy_store_bytes", "Bytes held in the file store", "total_bytes"),
    (GaugeMetricFamily, "variant_proxy_store_files", "Files held in the file store", "file_count"),
    (CounterMetricFamily, "variant_proxy_evictions", "Files evicted from the store", "evictions"),
    (
        CounterMetricFamily,
        "variant_proxy_hash_mismatches",
        "Downloads refused for a hash mismatch",
        "hash_mismatches",
    ),
)


class _LiveCollector(Collector):
    def __init__(self, source: ScrapeSource, metrics: Metrics) -> None:
        self._source = source
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        source = self._source
        requests = CounterMetricFamily(
            "variant_proxy_upstream_requests",
            "Requests sent to upstreams",
            labels=["upstream", "kind"],
        )
        for (upstream, kind), count in sorted(source.upstream_requests().items()):
            requests.add_metric([upstream, kind], count)
        yield requests
        errors = CounterMetricFamily(
            "variant_proxy_upstream_errors",
            "Upstream failures (unreachable, 5xx, timeouts)",
            labels=["upstream"],
        )
        for upstream, count in sorted(source.upstream_errors().items()):
            errors.add_metric([upstream], count)
        yield errors
        hits = CounterMetricFamily("variant_proxy_cache_hits", "Cache hits", labels=["kind"])
        hits.add_metric(["page"], source.page_hits())
        hits.add_metric(["file"], self._metrics.file_hits)
        yield hits
        misses = CounterMetricFamily("variant_proxy_cache_misses", "Cache misses", labels=["kind"])
        misses.add_metric(["page"], source.page_misses())
        misses.add_metric(["file"], self._metrics.file_misses)
        yield misses
        figures = source.store_figures()
        for family, name, documentation, key in _STORE_FIGURES:
            yield family(name, documentation, value=figures.get(key, 0))


class Metrics:
    def __init__(self, source: ScrapeSource) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "variant_proxy_requests",
            "HTTP requests served",
            ["route", "status"],
            registry=self.registry,
        )
        self.bytes_served = Counter(
            "variant_proxy_bytes_served",
            "File bytes sent to clients",
            ["source"],
            registry=self.registry,
        )
        self.file_hits = 0
        self.file_misses = 0
        self.registry.register(_LiveCollector(source, self))

    def render(self) -> bytes:
        return generate_latest(self.registry)
