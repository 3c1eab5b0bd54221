-- Each change gets the subscriber's next version, in a fixed order (kind, then key): versions
-- only grow, and loads (like erasures) take turns on one lock.
CREATE TEMP TABLE feed_numbered ON COMMIT DROP AS
SELECT c.*, s.last_version + row_number() OVER (
           PARTITION BY c.subscriber ORDER BY c.kind, c.record_key COLLATE "C") AS version  -- noqa: RF02
FROM feed_changes c
JOIN ops.feed_subscriber s ON s.subscriber = c.subscriber
