"""The HTTP proxy (``-http_port``): bert-as-service over JSON for those who cannot speak ZeroMQ.

It runs in its own process and forwards to the server through one ``ServerLink`` (the 1.10
client protocol, without the client package).
Flask and its helpers come with the ``http`` extra, so nothing here is imported unless a
server starts with ``-http_port``.
"""
