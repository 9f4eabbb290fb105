"""Cluster figures for `/metrics` (per replica), read at scrape time.

- `variant_proxy_cluster_sources_total{source}`: file fetches by where their bytes came
  from: `bucket`, `upstream` (this replica held the lock), `peer` (streamed from the
  replica that held it);
- `variant_proxy_cluster_resumed_total`: streams that broke off mid-file (a peer died) and
  went on from another source;
- `variant_proxy_cluster_bucket_writes_total{result}`: `stored`, `present` (another
  replica was first), `failed`;
- `variant_proxy_cluster_redis_errors_total`: Redis calls that failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from proxy.cluster.replica import Replica


class ClusterCollector(Collector):
    def __init__(self, replica: Replica) -> None:
        self._replica = replica

    def collect(self) -> Iterable[Metric]:
        files = self._replica.files
        if files is not None:
            counters = files.counters
            yield _by_label(
                "variant_proxy_cluster_sources",
                "File fetches by source of their bytes",
                "source",
                counters.sources,
                ("bucket", "upstream", "peer"),
            )
            yield CounterMetricFamily(
                "variant_proxy_cluster_resumed",
                "File streams resumed from another source after breaking off",
                value=counters.resumed,
            )
            yield _by_label(
                "variant_proxy_cluster_bucket_writes",
                "Verified files written to the bucket, by outcome",
                "result",
                counters.bucket_writes,
                ("stored", "present", "failed"),
            )
        coordinator = self._replica.coordinator
        if coordinator is not None:
            yield CounterMetricFamily(
                "variant_proxy_cluster_redis_errors",
                "Redis calls that failed",
                value=coordinator.errors,
            )


def _by_label(
    name: str, documentation: str, label: str, counts: Mapping[str, int], values: Sequence[str]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=[label])
    for value in values:
        family.add_metric([value], counts.get(value, 0))
    return family
