"""Feeds, article pages and news APIs into the news topic (`finmon ingest`)."""
