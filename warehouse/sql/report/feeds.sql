-- Each subscriber's sync feed: its last change version and how far the relay is behind it.
-- A subscriber gone from the registry stays listed while it was ever sent something.
SELECT s.subscriber, s.last_version,
       s.last_version - coalesce(r.relayed_version, 0) AS lag,
       r.relayed_at
FROM ops.feed_subscriber AS s
LEFT JOIN ops.feed_relay AS r ON r.subscriber = s.subscriber
WHERE s.slices <> '{}' OR s.last_version > 0
ORDER BY s.subscriber
