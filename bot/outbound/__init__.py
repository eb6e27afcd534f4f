"""The outbound pipeline, outbox to Graph API: the dispatch loop, the send-time consent
check, settling each answer, and what Meta's refusals mean for the person."""
