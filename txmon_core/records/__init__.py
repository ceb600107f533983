"""The wire formats between the parts, each with its codec, defined once for writers and readers alike.

One module per format: `transaction` (topic `transactions`), `alert` (topic `alerts`, with the levels,
the default thresholds and the rule text), `dead_letter` (topic `transactions.dlq`, with every reason),
`metrics` (topic `metrics`, with the query names), `ready` (the line each child process prints once it
is ready) and `text` (making text from a record safe to show). The topic names live in
`txmon_core.topics`, the Parquet table's layout in `txmon_core.large_table`.
Imports neither pyspark nor Textual.
"""
