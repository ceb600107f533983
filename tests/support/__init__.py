"""Helpers the test folders share: Kafka reading, child processes, known records, waiting."""
