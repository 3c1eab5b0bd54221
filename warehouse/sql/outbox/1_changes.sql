-- What changed for the subscribers diffed: a record now in a view whose payload differs from
-- what was last sent (or was never sent) is an upsert; one sent before, within the scope the
-- views were computed for, and gone from them is a delete.
CREATE TEMP TABLE feed_changes ON COMMIT DROP AS
SELECT v.subscriber, v.kind, v.record_key, v.person, v.scope_day, v.payload, v.digest,
       'upsert' AS operation
FROM (SELECT *, sha256(convert_to(CAST(payload AS text), 'UTF8')) AS digest FROM feed_view) v
LEFT JOIN ops.feed_published p
  ON p.subscriber = v.subscriber AND p.record_key = v.record_key
WHERE p.payload_sha256 IS DISTINCT FROM v.digest
UNION ALL
SELECT p.subscriber, p.kind, p.record_key, p.person, p.scope_day, NULL, NULL, 'delete'
FROM feed_gone g
JOIN ops.feed_published p ON p.subscriber = g.subscriber AND p.record_key = g.record_key
