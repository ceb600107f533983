"""UI-free parts shared by every txmon command: options, topics, jars and the embedded broker."""

__version__ = "0.1.0"
