"""Prometheus metrics of the ingestion service."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONSUMED = Counter("skillsync_consumed_total", "Records read from partner topics", ["partner"])
LANDED = Counter("skillsync_landed_total", "Events newly landed in staging", ["partner"])
REDELIVERED = Counter("skillsync_redelivered_total",
                      "Events a partner sent again (landed once, counted here)", ["partner"])
REJECTED = Counter("skillsync_rejected_total", "Events refused", ["partner", "reason"])
BATCH_SECONDS = Histogram("skillsync_batch_seconds", "Time to check and land one batch",
                          buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
LAG = Gauge("skillsync_consumer_lag", "Records behind the partition's end", ["topic", "partition"])
TRANSIENT_FAILURES = Counter("skillsync_transient_failures_total",
                             "Batches retried because a service was unavailable", ["service"])
DROPPED = Counter("skillsync_dropped_batches_total",
                  "Batches voided unlanded because their partitions changed hands", ["reason"])
OWNED = Gauge("skillsync_partition_owned",
              "1 for each partition this process owns in the consumer group",
              ["topic", "partition"])
IN_GROUP = Gauge("skillsync_consumer_in_group",
                 "1 while this process is a stable member of the consumer group")
WEDGED = Gauge("skillsync_consumer_wedged",
               "1 once the watchdog found this process unable to progress (it exits)")
TOPIC_RECREATED = Counter("skillsync_topic_recreated_total",
                          "Partitions found re-created: read again from their new start", ["topic"])
REJOINS_ASKED = Counter("skillsync_consumer_rejoins_asked_total",
                        "Joins the Kafka client left unfinished, asked for again")
