"""txmon's transaction producer: a seeded generator of card transactions and its Kafka publish loop.

Imports neither Textual nor pyspark; the transaction format is `txmon_core.records.transaction`.
"""
