"""Consent webhooks to the business (C29): every grant, withdrawal and erasure, signed, at least
once and in order per contact, from the outbox that storage.consent_webhooks writes."""
