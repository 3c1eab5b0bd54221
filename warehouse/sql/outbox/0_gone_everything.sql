-- A subscriber diffed whole (new, or its subscription changed): everything it was sent that
-- its views no longer hold.
CREATE TEMP TABLE feed_gone ON COMMIT DROP AS
SELECT p.subscriber, p.record_key FROM ops.feed_published p
WHERE p.subscriber IN (SELECT ft.subscriber FROM feed_targets AS ft)
EXCEPT
SELECT subscriber, record_key FROM feed_view
