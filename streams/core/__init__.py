"""The pure pipeline, in the order a document meets it: decode, tag tickers, score, count in windows.

Nothing here imports faust or a Kafka client, so each step is tested with plain pytest.
"""
