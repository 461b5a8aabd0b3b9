"""The services' own events: their schema, and the emitter that sends them to Firehose."""
