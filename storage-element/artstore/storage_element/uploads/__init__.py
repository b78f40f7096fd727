"""Upload sessions: partial data of resumable (tus) uploads, kept on the SE itself so
any ingester can continue a session and nothing acknowledged is lost on a restart."""
