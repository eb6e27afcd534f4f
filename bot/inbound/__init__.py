"""The inbound pipeline, Meta to one transaction: the signature check, the webhook view,
ingest (every event stored once) and the responder (the dialogue's result written back)."""
