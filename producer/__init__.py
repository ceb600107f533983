"""txmon's transaction producer: a seeded generator of card transactions and its Kafka publish loop.

Imports neither Textual nor pyspark; readers of the transaction format use `producer.transaction`.
"""
