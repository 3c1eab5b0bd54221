-- The changes the day's loads wrote to each subscriber's feed, by kind and operation.
SELECT o.subscriber, o.kind, o.operation, count(*)::int AS changes
FROM ops.feed_outbox AS o
WHERE o.run_id IN (SELECT r.run_id FROM ops.load_runs AS r WHERE r.business_day = :day)
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
