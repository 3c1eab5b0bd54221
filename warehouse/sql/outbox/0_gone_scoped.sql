-- Records sent before whose person or day the views were computed for, and that the views
-- no longer hold (withdrawn from scope, erased, or no longer a finding).
CREATE TEMP TABLE feed_gone ON COMMIT DROP AS
SELECT p.subscriber, p.record_key FROM ops.feed_published p
WHERE p.person IN (SELECT fp.person FROM feed_persons AS fp)
  AND p.subscriber IN (SELECT ft.subscriber FROM feed_targets AS ft)
UNION ALL
SELECT p.subscriber, p.record_key FROM ops.feed_published p
WHERE p.person IS NULL AND p.scope_day = ANY(CAST(:days AS date[]))
  AND p.subscriber IN (SELECT ft.subscriber FROM feed_targets AS ft)
EXCEPT
SELECT subscriber, record_key FROM feed_view
