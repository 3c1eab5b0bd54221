INSERT INTO ops.feed_outbox
    (subscriber, version, operation, kind, record_key, payload, person, run_id)
SELECT subscriber, version, operation, kind, record_key, payload,
       CASE WHEN operation = 'upsert' THEN person END, :run_id
FROM feed_numbered
