"""A consumer subscribed by pattern meets a newly created topic: does it take its partitions?

kafka-python alone (no project code). Each attempt: delete topic B, start one consumer of a
fresh group subscribed to ^<prefix>\\.(a|b)$ (topic A exists), let it settle, create B, publish
50 records to B, and wait for the consumer to read them. Prints one line per attempt and, for a
wedged attempt, how long the consumer went without a poll returning records for B.

    python docs/repro/kafka_python_new_topic_wedge.py --bootstrap 127.0.0.1:9092 --attempts 7
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import threading
import time
import uuid

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import UnknownTopicOrPartitionError


def attempt(bootstrap: str, settle_s: float, wait_s: float, assignor: str,
            poll_timeout_ms: int, nudge: bool) -> dict[str, object]:
    prefix = f"wedge{uuid.uuid4().hex[:8]}"
    topic_a, topic_b = f"{prefix}.a", f"{prefix}.b"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic_a, 3, 1)])
    with contextlib.suppress(UnknownTopicOrPartitionError):
        admin.delete_topics([topic_b])
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
    assignors: dict[str, object] = {"range": RangePartitionAssignor,
                                    "roundrobin": RoundRobinPartitionAssignor}
    if assignor == "cooperative-sticky":  # kafka-python 3 only
        from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
        assignors[assignor] = CooperativeStickyAssignor
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=f"{prefix}-group", enable_auto_commit=False,
        auto_offset_reset="earliest", metadata_max_age_ms=5000, session_timeout_ms=45000,
        heartbeat_interval_ms=3000, max_poll_records=500,
        partition_assignment_strategy=(assignors[assignor],))
    consumer.subscribe(pattern=rf"^{prefix}\.(a|b)$")
    got_b = 0
    stop = threading.Event()
    last_b = [0.0]

    rebalancing: list[float] = []
    busy = threading.Event()  # set once B exists: from then on, short polls with work between

    def loop() -> None:
        nonlocal got_b
        while not stop.is_set():
            timeout_ms = poll_timeout_ms if busy.is_set() else 500
            for tp, records in consumer.poll(timeout_ms=timeout_ms).items():
                if tp.topic == topic_b:
                    got_b += len(records)
                    last_b[0] = time.monotonic()
            if busy.is_set():
                time.sleep(0.05)  # the service's own work between polls (landing a batch)
            if nudge and consumer.group_metadata().state == "<rebalancing>":
                rebalancing.append(time.monotonic())
                if rebalancing[-1] - rebalancing[0] > 5:
                    consumer._coordinator.request_rejoin()  # the workaround
                    rebalancing.clear()
            elif nudge:
                rebalancing.clear()

    poller = threading.Thread(target=loop, daemon=True)
    poller.start()
    time.sleep(settle_s)
    busy.set()
    admin.create_topics([NewTopic(topic_b, 3, 1)])
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for n in range(50):
        producer.send(topic_b, f"record {n}".encode())
    producer.flush()
    producer.close()
    published = time.monotonic()
    deadline = published + wait_s
    while got_b < 50 and time.monotonic() < deadline:
        time.sleep(0.2)
    result = {"read": got_b, "seconds": round(time.monotonic() - published, 1),
              "assignment": sorted(f"{tp.topic[-1]}{tp.partition}" for tp in consumer.assignment()),
              "member_state": (consumer.group_metadata().state
                               if hasattr(consumer, "group_metadata") else "n/a")}
    stop.set()
    poller.join(timeout=30)
    result["poller_stuck"] = poller.is_alive()
    if not poller.is_alive():
        consumer.close()
    admin.delete_topics([topic_a, topic_b])
    admin.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--attempts", type=int, default=7)
    parser.add_argument("--settle", type=float, default=20.0)
    parser.add_argument("--wait", type=float, default=90.0)
    parser.add_argument("--assignor", default="range",
                        choices=("range", "roundrobin", "cooperative-sticky"))
    parser.add_argument("--poll-timeout-ms", type=int, default=20,
                        help="poll timeout once B exists, with 50 ms of other work between "
                             "polls; the shorter, the likelier the lost join (500: rare)")
    parser.add_argument("--nudge", action="store_true",
                        help="the workaround: after 5 s of rebalancing, request_rejoin()")
    parser.add_argument("--debug-log", default=None)
    parser.add_argument("--switch-interval", type=float, default=None,
                        help="sys.setswitchinterval: a small one makes thread races likelier")
    args = parser.parse_args()
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    if args.debug_log:
        logging.basicConfig(filename=args.debug_log, level=logging.DEBUG,
                            format="%(asctime)s %(threadName)s %(name)s %(message)s")
    else:
        logging.basicConfig(level=logging.WARNING)
    import kafka
    wedged = 0
    for n in range(1, args.attempts + 1):
        result = attempt(args.bootstrap, args.settle, args.wait, args.assignor,
                         args.poll_timeout_ms, args.nudge)
        ok = result["read"] == 50
        wedged += not ok
        print(f"kafka-python {kafka.__version__} attempt {n}: {'ok' if ok else 'WEDGED'} "
              f"{result}", flush=True)
    print(f"{wedged} of {args.attempts} attempts wedged", flush=True)
    return 1 if wedged else 0


if __name__ == "__main__":
    sys.exit(main())
