"""The Spark Structured Streaming job. Only modules that run the job import pyspark."""
