"""Analytics: what the platform and each household look like at a glance (the household
dashboard first; operator summaries, series and the event log are still to come)."""
