"""Chat front ends (Telegram, Discord): parse an update, call the service, render the reply.

They hold no behaviour of their own beyond that: conversions, preferences, statistics and
privacy live in `service`, every user-facing string in `i18n`.
"""
