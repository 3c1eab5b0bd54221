WITH gone AS (
    DELETE FROM ops.feed_published p USING feed_numbered n
    WHERE n.operation = 'delete' AND p.subscriber = n.subscriber
      AND p.record_key = n.record_key
    RETURNING 1),
last AS (
    UPDATE ops.feed_subscriber s SET last_version = n.version, updated_at = now()
    FROM (SELECT subscriber, max(version) AS version FROM feed_numbered GROUP BY 1) n
    WHERE s.subscriber = n.subscriber
    RETURNING 1)
INSERT INTO ops.feed_published
    (subscriber, record_key, kind, person, scope_day, payload_sha256, version)
SELECT subscriber, record_key, kind, person, scope_day, digest, version
FROM feed_numbered WHERE operation = 'upsert'
ON CONFLICT (subscriber, record_key) DO UPDATE SET
    kind = EXCLUDED.kind, person = EXCLUDED.person, scope_day = EXCLUDED.scope_day,
    payload_sha256 = EXCLUDED.payload_sha256, version = EXCLUDED.version
